//! The script language: directives in the user's prompt tell the model what to do, so a test (or
//! someone trying the platform without a model key) can make the real agent act.
//!
//! ```text
//! @write notes/hello.txt Hello, world     tool call: write the file (one per line, any number)
//! @write_bytes big.txt 5000000            tool call: write a file of that many bytes (`x`s), for
//!                                         events bigger than any prompt could make
//! @bash echo hi > out.txt                 tool call: run a shell command
//! @say All done.\n\nBye.                  the final answer, `\n` for a line break (default: an echo)
//! @repeat 200                             say it this many times
//! @chunk 8                                stream the answer in pieces of this many characters
//! @delay_ms 20                            pause between pieces
//! ```

#[derive(Debug, Clone, PartialEq)]
pub enum ToolCall {
    Write { path: String, content: String },
    Bash { command: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub tools: Vec<ToolCall>,
    pub say: String,
    pub chunk: usize,
    pub delay_ms: u64,
}

impl Script {
    pub fn parse(prompt: &str) -> Script {
        let mut script = Script {
            tools: Vec::new(),
            say: String::new(),
            chunk: 4,
            delay_ms: 0,
        };
        let mut repeat = 1usize;
        let mut plain = Vec::new();
        for line in prompt.lines() {
            let line = line.trim();
            let (directive, rest) = line.split_once(' ').unwrap_or((line, ""));
            match directive {
                "@write" => {
                    let (path, content) = rest.split_once(' ').unwrap_or((rest, ""));
                    script.tools.push(ToolCall::Write {
                        path: path.to_owned(),
                        content: content.to_owned(),
                    });
                }
                "@write_bytes" => {
                    let (path, n) = rest.split_once(' ').unwrap_or((rest, ""));
                    // Bounded: this is a test's tool, not a way to exhaust the machine.
                    let n = n.trim().parse::<usize>().unwrap_or(0).min(64 << 20);
                    script.tools.push(ToolCall::Write {
                        path: path.to_owned(),
                        content: "x".repeat(n),
                    });
                }
                "@bash" => script.tools.push(ToolCall::Bash {
                    command: rest.to_owned(),
                }),
                "@say" => script.say = rest.replace("\\n", "\n"),
                "@repeat" => repeat = rest.parse().unwrap_or(1).max(1),
                "@chunk" => script.chunk = rest.parse().unwrap_or(4).max(1),
                "@delay_ms" => script.delay_ms = rest.parse().unwrap_or(0),
                _ if !line.is_empty() => plain.push(line),
                _ => {}
            }
        }
        if script.say.is_empty() {
            script.say = if plain.is_empty() {
                "Done.".to_owned()
            } else {
                format!("You said: {}", plain.join(" "))
            };
        }
        script.say = script.say.repeat(repeat);
        script
    }

    /// The answer cut into streaming pieces, on character boundaries.
    pub fn pieces(&self) -> Vec<String> {
        let chars: Vec<char> = self.say.chars().collect();
        chars
            .chunks(self.chunk)
            .map(|c| c.iter().collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        let s = Script::parse(
            "please\n@write a/b.txt hello there\n@say ok!\n@repeat 2\n@chunk 3\n@delay_ms 5",
        );
        assert_eq!(
            s.tools,
            vec![ToolCall::Write {
                path: "a/b.txt".into(),
                content: "hello there".into()
            }]
        );
        assert_eq!(s.say, "ok!ok!");
        assert_eq!(s.pieces(), vec!["ok!", "ok!"]);
        assert_eq!(s.delay_ms, 5);
    }

    #[test]
    fn write_bytes_makes_a_big_tool_call() {
        let s = Script::parse("@write_bytes big.txt 5000000");
        let [ToolCall::Write { path, content }] = &s.tools[..] else {
            panic!("{:?}", s.tools)
        };
        assert_eq!((path.as_str(), content.len()), ("big.txt", 5_000_000));
        assert!(content.bytes().all(|b| b == b'x'));
    }

    #[test]
    fn default_answer_echoes() {
        let s = Script::parse("hello world");
        assert_eq!(s.say, "You said: hello world");
        assert!(s.tools.is_empty());
    }
}
