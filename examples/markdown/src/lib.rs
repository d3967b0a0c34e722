//! markdown: renders Markdown to HTML with pulldown-cmark, escaping raw HTML unless asked
//! not to, so user-written text cannot inject markup.

wit_bindgen::generate!({ world: "markdown", path: "wit" });

use pulldown_cmark::{Event, Options, Parser, html};

struct Markdown;

impl Guest for Markdown {
    fn render(text: String, allow_html: bool) -> String {
        let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_FOOTNOTES;
        let events = Parser::new_ext(&text, options).map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) if !allow_html => Event::Text(raw),
            other => other,
        });
        let mut out = String::with_capacity(text.len() * 3 / 2);
        html::push_html(&mut out, events);
        out
    }
}

export!(Markdown);
