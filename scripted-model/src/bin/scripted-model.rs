//! Runs the scripted model server: `scripted-model --listen 127.0.0.1:8791`.

use clap::Parser;

#[derive(Parser)]
#[command(about = "A scripted OpenAI-compatible model server for tests and demos")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8791")]
    listen: std::net::SocketAddr,
    /// The API key every request must carry; any request is answered without one.
    #[arg(long, env = "SCRIPTED_MODEL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (addr, _recorder) = scripted_model::spawn(args.listen, args.api_key).await?;
    println!("scripted model listening on http://{addr}/v1");
    std::future::pending::<()>().await;
    Ok(())
}
