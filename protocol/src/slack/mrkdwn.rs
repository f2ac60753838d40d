//! The agent's Markdown as Slack's mrkdwn, in messages Slack accepts whole.
//!
//! Markdown is parsed (pulldown-cmark), not pattern-matched: `**bold**` becomes `*bold*`, a
//! link `<url|text>`, a heading a bold line, a list item a bullet; `&`, `<` and `>` are escaped
//! everywhere, as Slack requires, so text can never form a mention or a link it did not have.
//! Long answers are split on line boundaries, a code block closed at the cut and reopened after.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Slack truncates a message's `text` beyond 40,000 characters and advises far fewer; this
/// keeps each message readable and well under every limit.
pub const MESSAGE_CHARS: usize = 3_500;

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// `markdown` as mrkdwn.
pub fn to_mrkdwn(markdown: &str) -> String {
    let mut out = String::new();
    // Each open list: the next item's number, when it is ordered.
    let mut lists: Vec<Option<u64>> = Vec::new();
    // The text of the link being read, and where it goes.
    let mut link: Option<(String, String)> = None;
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    for event in Parser::new_ext(markdown, options) {
        let sink = match &mut link {
            Some((_, text)) => text,
            None => &mut out,
        };
        match event {
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => sink.push('*'),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => sink.push('_'),
            Event::Start(Tag::Strikethrough) | Event::End(TagEnd::Strikethrough) => sink.push('~'),
            Event::Start(Tag::Heading { .. }) => sink.push('*'),
            Event::End(TagEnd::Heading(level)) => {
                sink.push('*');
                sink.push_str(if level == HeadingLevel::H1 {
                    "\n\n"
                } else {
                    "\n"
                });
            }
            Event::Start(Tag::CodeBlock(_)) => sink.push_str("```\n"),
            Event::End(TagEnd::CodeBlock) => {
                if !sink.ends_with('\n') {
                    sink.push('\n');
                }
                sink.push_str("```\n");
            }
            Event::Start(Tag::BlockQuote(_)) => sink.push_str("> "),
            Event::Start(Tag::List(first)) => {
                if !sink.is_empty() && !sink.ends_with('\n') {
                    sink.push('\n');
                }
                lists.push(first)
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    sink.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                sink.push_str(&"    ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        sink.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => sink.push_str("• "),
                }
            }
            Event::End(TagEnd::Item) if !sink.ends_with('\n') => sink.push('\n'),
            Event::End(TagEnd::Paragraph) => {
                sink.push('\n');
                if lists.is_empty() {
                    sink.push('\n');
                }
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                link = Some((dest_url.to_string(), String::new()));
            }
            Event::End(TagEnd::Link | TagEnd::Image) => {
                if let Some((url, text)) = link.take() {
                    // A URL holds no `<`, `>` or `|` of its own once escaped; the text is
                    // already escaped.
                    let mut target = String::new();
                    escape(&url.replace('|', "%7C"), &mut target);
                    match text.is_empty() {
                        true => out.push_str(&format!("<{target}>")),
                        false => out.push_str(&format!("<{target}|{text}>")),
                    }
                }
            }
            Event::End(TagEnd::TableCell) => sink.push_str(" | "),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                let trimmed = sink.trim_end_matches(" | ").len();
                sink.truncate(trimmed);
                sink.push('\n');
            }
            Event::End(TagEnd::Table | TagEnd::BlockQuote(_)) => sink.push('\n'),
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => escape(&text, sink),
            Event::Code(code) => {
                sink.push('`');
                escape(&code, sink);
                sink.push('`');
            }
            Event::SoftBreak | Event::HardBreak => sink.push('\n'),
            Event::Rule => sink.push_str("───\n"),
            Event::TaskListMarker(done) => sink.push_str(if done { "☑ " } else { "☐ " }),
            _ => {}
        }
    }
    out.trim_end().to_owned()
}

/// `text` in messages of at most `limit` characters, cut between lines where it can be, a code
/// block closed at a cut and opened again in the next message.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    const FENCE: &str = "```";
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_code = false;
    for line in text.split_inclusive('\n') {
        let mut line = line;
        loop {
            let reserve = if in_code { FENCE.len() + 1 } else { 0 };
            let room = limit.saturating_sub(current.chars().count() + reserve);
            if line.chars().count() <= room {
                current.push_str(line);
                break;
            }
            if current.is_empty() || current == format!("{FENCE}\n") {
                // One line longer than a message: cut it where it fills this one.
                let cut = line
                    .char_indices()
                    .nth(room.max(1))
                    .map_or(line.len(), |(i, _)| i);
                current.push_str(&line[..cut]);
                line = &line[cut..];
            }
            if in_code {
                if !current.ends_with('\n') {
                    current.push('\n');
                }
                current.push_str(FENCE);
            }
            parts.push(std::mem::take(&mut current).trim_end().to_owned());
            if in_code {
                current.push_str(FENCE);
                current.push('\n');
            }
            if line.is_empty() {
                break;
            }
        }
        if line.trim_start().starts_with(FENCE) {
            in_code = !in_code;
        }
    }
    if !current.trim().is_empty() {
        parts.push(current.trim_end().to_owned());
    }
    parts.retain(|p| !p.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_mrkdwn() {
        let md = "# Done\n\nI **fixed** the _login_ ~~bug~~ in `auth.rs`; see [the PR](https://x.test/pr/1).\n\n- one\n- two\n  1. a\n  2. b\n\n```rust\nfn main() {}\n```\n";
        let got = to_mrkdwn(md);
        assert_eq!(
            got,
            "*Done*\n\nI *fixed* the _login_ ~bug~ in `auth.rs`; see <https://x.test/pr/1|the PR>.\n\n• one\n• two\n    1. a\n    2. b\n\n```\nfn main() {}\n```"
        );
    }

    #[test]
    fn text_cannot_mention_or_link() {
        let got = to_mrkdwn("Ping <!channel> & <@U123> or <!here|here>");
        assert!(!got.contains('<') && !got.contains('>'), "{got}");
        assert!(
            got.contains("&lt;!channel&gt; &amp; &lt;@U123&gt;"),
            "{got}"
        );
        // A link is a link to where it says, whatever its text claims.
        let link = to_mrkdwn("[<@U1> docs](https://x.test/a|b)");
        assert_eq!(link, "<https://x.test/a%7Cb|&lt;@U1&gt; docs>");
    }

    #[test]
    fn long_text_is_split_between_lines_and_code_stays_fenced() {
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!("line {i} of the answer\n"));
        }
        text.push_str("```\n");
        for i in 0..40 {
            text.push_str(&format!("code {i}\n"));
        }
        text.push_str("```\nthe end");
        let parts = split(&text, 200);
        assert!(parts.len() > 4);
        for p in &parts {
            assert!(p.chars().count() <= 200, "{} chars", p.chars().count());
            assert_eq!(p.matches("```").count() % 2, 0, "balanced fences: {p}");
        }
        let joined = parts.join("\n");
        for i in 0..40 {
            assert!(joined.contains(&format!("line {i} of the answer\n")));
            assert!(joined.contains(&format!("code {i}\n")));
        }
        assert!(joined.ends_with("the end"));
    }

    #[test]
    fn a_line_longer_than_a_message_is_cut() {
        let line = "x".repeat(450);
        let parts = split(&line, 200);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), line);
        assert_eq!(split("", 200), Vec::<String>::new());
        assert_eq!(split("short", 200), vec!["short"]);
    }
}
