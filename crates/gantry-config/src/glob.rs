//! File globs as Cloud Build reads them: `*` and `?` stay within one path segment, `**`
//! crosses segments (`src/**` is everything under `src`, `**/*.md` every Markdown file).

/// Compiles a glob into an anchored regex; the patterns were checked at validation, and an
/// unexpected failure matches nothing.
pub fn compile(glob: &str) -> Option<regex::Regex> {
    let mut out = String::from("^");
    let chars: Vec<char> = glob.trim_start_matches("./").chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let slash_after = chars.get(i + 2) == Some(&'/');
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                if slash_after && at_segment_start {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
            }
            '*' => {
                out.push_str("[^/]*");
                i += 1;
            }
            '?' => {
                out.push_str("[^/]");
                i += 1;
            }
            c => {
                out.push_str(&regex::escape(&c.to_string()));
                i += 1;
            }
        }
    }
    out.push('$');
    regex::Regex::new(&out).ok()
}

pub fn matches_any(globs: &[regex::Regex], path: &str) -> bool {
    globs.iter().any(|g| g.is_match(path))
}
