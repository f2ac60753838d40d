//! What each of the agent's model calls used, read from the model's own answer as it streams
//! through (the runner's word for it is not taken): OpenAI's chat completions and responses,
//! Anthropic's messages, streamed (server-sent events) or whole. Pure, so each provider's shape is
//! unit-tested natively; the model route adds the counts to the session's row.

use agent_ops_protocol::api::ModelUsage;
use serde_json::Value;

/// A whole (not streamed) answer bigger than this is passed on without being read for usage.
const MAX_WHOLE_BYTES: usize = 4 << 20;

/// Reads usage out of an answer fed to it a chunk at a time.
#[derive(Debug, Default)]
pub struct UsageMeter {
    streamed: bool,
    /// The current line of a stream, or the whole answer otherwise.
    pending: Vec<u8>,
    input: u64,
    output: u64,
}

impl UsageMeter {
    pub fn new(streamed: bool) -> UsageMeter {
        UsageMeter {
            streamed,
            ..Default::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.streamed {
            if self.pending.len() + chunk.len() <= MAX_WHOLE_BYTES {
                self.pending.extend_from_slice(chunk);
            }
            return;
        }
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.pending);
                self.line(&line);
            } else {
                self.pending.push(b);
            }
        }
    }

    /// Only a line that mentions usage is parsed: the stream's deltas pass at the cost of a scan.
    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if !data.windows(7).any(|w| w == b"\"usage\"") {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(data) {
            self.read(&v);
        }
    }

    /// Usage in any of the places the providers put it. Within one call the counts only grow
    /// (Anthropic reports input at the start and the output so far as it goes), so the largest
    /// seen is the call's.
    fn read(&mut self, v: &Value) {
        let places = [&v["usage"], &v["response"]["usage"], &v["message"]["usage"]];
        for u in places.into_iter().filter(|u| u.is_object()) {
            let n = |k: &str| u[k].as_u64().unwrap_or(0);
            self.input = self.input.max(n("prompt_tokens").max(n("input_tokens")));
            self.output = self
                .output
                .max(n("completion_tokens").max(n("output_tokens")));
        }
    }

    /// The call's usage, once its answer has been fed whole.
    pub fn finish(mut self) -> ModelUsage {
        if self.streamed {
            let rest = std::mem::take(&mut self.pending);
            self.line(&rest);
        } else if let Ok(v) = serde_json::from_slice::<Value>(&self.pending) {
            self.read(&v);
        }
        ModelUsage {
            input_tokens: self.input,
            output_tokens: self.output,
            calls: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metered(streamed: bool, chunks: &[&str]) -> ModelUsage {
        let mut m = UsageMeter::new(streamed);
        for c in chunks {
            m.feed(c.as_bytes());
        }
        m.finish()
    }

    fn usage(input: u64, output: u64) -> ModelUsage {
        ModelUsage {
            input_tokens: input,
            output_tokens: output,
            calls: 1,
        }
    }

    #[test]
    fn openai_chat_streamed_with_the_usage_chunk_split_across_reads() {
        let got = metered(
            true,
            &[
                "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_",
                "tokens\":120,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n",
            ],
        );
        assert_eq!(got, usage(120, 7));
    }

    #[test]
    fn anthropic_messages_streamed() {
        let got = metered(
            true,
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":300,\"output_tokens\":1}}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n",
            ],
        );
        assert_eq!(got, usage(300, 42));
    }

    #[test]
    fn openai_responses_streamed_and_whole_answers() {
        let got = metered(
            true,
            &["data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":3}}}"],
        );
        assert_eq!(got, usage(9, 3), "a last line without its newline");
        let whole = metered(
            false,
            &[
                "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,",
                "\"completion_tokens\":2}}",
            ],
        );
        assert_eq!(whole, usage(5, 2));
        assert_eq!(metered(false, &["not json"]), usage(0, 0));
    }
}
