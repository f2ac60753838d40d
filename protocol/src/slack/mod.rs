//! Slack, as a way in and a channel out: request signatures, the slash command's grammar, the
//! wire formats read and written, and the agent's Markdown as Slack's mrkdwn.

pub mod command;
#[cfg(feature = "slack")]
pub mod mrkdwn;
pub mod signature;
pub mod wire;

/// What a person asked, from their message's text: without the mentions it starts with (the
/// app's own, in an `app_mention`), and with the `&amp;`, `&lt;` and `&gt;` Slack writes for
/// `&`, `<` and `>` read back.
pub fn prompt_text(text: &str) -> String {
    strip_mentions(text)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn strip_mentions(text: &str) -> &str {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix("<@") {
        match after.split_once('>') {
            Some((_, tail)) => rest = tail.trim_start(),
            None => break,
        }
    }
    rest.trim()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_apps_mention_is_not_the_task() {
        assert_eq!(
            super::prompt_text("<@U0BOT> check a &lt; b &amp;&amp; c &gt; d"),
            "check a < b && c > d"
        );
        assert_eq!(
            super::strip_mentions("<@U0BOT> fix the build"),
            "fix the build"
        );
        assert_eq!(super::strip_mentions("  <@U1> <@U2>  hi <@U3>"), "hi <@U3>");
        assert_eq!(super::strip_mentions("<@U1"), "<@U1");
    }
}
