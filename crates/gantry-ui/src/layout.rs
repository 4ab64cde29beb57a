//! What every page shares: its title, the section the navigation marks as
//! current, the signed-in session and the asset URLs.

use gantry_wire::Status;

use crate::assets;
use crate::format::status_symbol;
use crate::session::Session;

pub struct Layout {
    pub title: String,
    /// `pipelines`, `executions`, `applications`, …: marked `aria-current`.
    pub section: &'static str,
    pub session: Session,
    /// The stylesheet, inlined (see `assets::stylesheet`).
    pub style: &'static str,
    pub actions_js: String,
}

impl Layout {
    pub fn new(title: impl Into<String>, section: &'static str, session: Session) -> Layout {
        Layout {
            title: title.into(),
            section,
            session,
            style: assets::stylesheet(),
            actions_js: assets::url("actions.js"),
        }
    }
}

/// A status as the pages show it: a symbol and the word, coloured by class.
#[derive(Clone, Copy, Debug)]
pub struct Badge(pub Status);

impl Badge {
    pub fn word(&self) -> &'static str {
        self.0.as_str()
    }

    pub fn symbol(&self) -> &'static str {
        status_symbol(self.0)
    }
}

impl std::fmt::Display for Badge {
    /// `<span class="status st-failed">✗ failed</span>`, for templates (`|safe`): only
    /// fixed words, nothing from outside.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            r#"<span class="status st-{word}"><span aria-hidden="true">{symbol}</span> {word}</span>"#,
            word = self.word(),
            symbol = self.symbol()
        )
    }
}
