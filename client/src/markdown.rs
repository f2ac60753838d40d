//! Markdown to HTML for the agent's answers. The agent's text is untrusted (it echoes whatever a
//! repository or a web page told it), so raw HTML in it is shown as text, never interpreted, and
//! links may only be absolute http(s) URLs: a relative one would resolve against the app's own
//! origin, where a click sends the viewer's cookie to whatever route the agent named. Code blocks are highlighted by a function the caller
//! passes in (highlight.js in the browser), which keeps this module pure and natively tested.

use pulldown_cmark::{html, CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Returns highlighted HTML for `code` in `lang`, or `None` to show it plain.
pub type Highlighter = fn(code: &str, lang: &str) -> Option<String>;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

pub fn render(text: &str, highlight: Highlighter) -> String {
    let parser = Parser::new_ext(
        text,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
    );
    let mut events = Vec::new();
    let mut code: Option<(String, String)> = None;
    // An unsafe link becomes emphasis: its end must become the emphasis' end.
    let mut unsafe_links: Vec<bool> = Vec::new();
    for ev in parser {
        match (ev, &mut code) {
            (Event::Start(Tag::CodeBlock(kind)), _) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.split_whitespace().next().unwrap_or("").into(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            (Event::Text(t), Some((_, buf))) => buf.push_str(&t),
            (Event::End(TagEnd::CodeBlock), Some(_)) => {
                let (lang, buf) = code.take().unwrap_or_default();
                let body = if lang.is_empty() {
                    None
                } else {
                    highlight(&buf, &lang)
                }
                .unwrap_or_else(|| escape(&buf));
                let class = if lang.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"hljs language-{}\"", escape(&lang))
                };
                events.push(Event::Html(CowStr::from(format!(
                    "<pre><code{class}>{body}</code></pre>"
                ))));
            }
            (Event::Html(raw) | Event::InlineHtml(raw), _) => events.push(Event::Text(raw)),
            (Event::Start(Tag::Link { dest_url, .. }), _) if !safe_url(&dest_url) => {
                unsafe_links.push(true);
                events.push(Event::Start(Tag::Emphasis))
            }
            (ev @ Event::Start(Tag::Link { .. }), _) => {
                unsafe_links.push(false);
                events.push(ev)
            }
            (Event::End(TagEnd::Link), _) => events.push(if unsafe_links.pop() == Some(true) {
                Event::End(TagEnd::Emphasis)
            } else {
                Event::End(TagEnd::Link)
            }),
            (Event::Start(Tag::Image { .. }), _) => events.push(Event::Start(Tag::Emphasis)),
            (Event::End(TagEnd::Image), _) => events.push(Event::End(TagEnd::Emphasis)),
            (ev, _) => events.push(ev),
        }
    }
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str, _: &str) -> Option<String> {
        None
    }

    fn upper(code: &str, _: &str) -> Option<String> {
        Some(escape(&code.to_uppercase()))
    }

    #[test]
    fn renders_common_markdown() {
        let html = render("# Title\n\n**bold** and `code`\n\n- a\n- b", none);
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<li>a</li>"));
    }

    #[test]
    fn raw_html_is_shown_not_interpreted() {
        let html = render(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=y>",
            none,
        );
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn javascript_links_lose_their_target() {
        let html = render("[x](javascript:alert(1)) [ok](https://e.com)", none);
        assert!(!html.contains("javascript:"));
        assert!(html.contains("<em>x</em>"));
        assert!(html.contains("href=\"https://e.com\""));
    }

    #[test]
    fn relative_links_cannot_reach_the_apps_routes() {
        for link in [
            "/api/keys",
            "api/me",
            "../auth/logout",
            "//evil.example/x",
            "#top",
            "?x=1",
        ] {
            let html = render(&format!("[here]({link})"), none);
            assert!(!html.contains("href"), "{link}: {html}");
            assert!(html.contains("<em>here</em>"), "{link}: {html}");
        }
    }

    #[test]
    fn fenced_code_is_highlighted_and_escaped() {
        let html = render("```rust\nlet a = \"<b>\";\n```", upper);
        assert!(html.contains("class=\"hljs language-rust\""));
        assert!(html.contains("LET A = &quot;&lt;B&gt;&quot;;"));
        let plain = render("```\n<b>\n```", upper);
        assert!(plain.contains("<pre><code>&lt;b&gt;\n</code></pre>"));
    }
}
