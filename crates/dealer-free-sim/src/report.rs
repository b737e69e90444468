//! One self-contained HTML page over written figures: [`write_index_html`].
//!
//! The page makes no request: every figure's SVG is inlined, there are no external styles,
//! scripts or images, and a Content-Security-Policy forbids any. A small inline script counts
//! the figures the browser actually laid out (`document.body.dataset.rendered`, next to
//! `data-expected`), so a headless browser can check the page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::figures::{Figure, FigureError, FigureFiles, write_atomic};

/// The Content-Security-Policy of the page: nothing may be fetched.
pub const INDEX_CSP: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

/// Writes `dir/index.html` (atomically): `title`, the summary (`summary_md`, Markdown: tables,
/// headings, `- ` lists, code blocks and paragraphs are rendered, everything else shown as
/// text), then each
/// figure under its title, its SVG inlined, with links to its `.json`, `.png` and `.svg` files
/// and its notes. Returns the page's path.
///
/// # Errors
/// [`FigureError::Io`] when an SVG cannot be read or the page cannot be written.
pub fn write_index_html(
    dir: &Path,
    figures: &[(Figure, FigureFiles)],
    summary_md: &str,
    title: &str,
) -> Result<PathBuf, FigureError> {
    std::fs::create_dir_all(dir)?;
    let mut html = String::new();
    let t = escape(title);
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title>
<style>
body {{ font-family: "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 1060px; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.6em; }}
section.figure {{ margin: 2.5em 0; border-top: 1px solid #ddd; padding-top: 1em; }}
section.figure svg {{ max-width: 100%; height: auto; display: block; }}
p.links a {{ margin-right: 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f3f3f3; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
ul.notes {{ color: #555; font-size: 0.9em; }}
</style>
</head>
<body data-expected="{n}" data-rendered="0">
<h1>{t}</h1>
"#,
        csp = INDEX_CSP,
        n = figures.len(),
    );
    if !summary_md.trim().is_empty() {
        html.push_str("<section class=\"summary\">\n");
        html.push_str(&markdown_to_html(summary_md));
        html.push_str("</section>\n");
    }
    if !figures.is_empty() {
        html.push_str("<nav><ul>\n");
        for (fig, _) in figures {
            let _ = writeln!(
                html,
                "<li><a href=\"#fig-{id}\">{title}</a></li>",
                id = escape(&fig.name),
                title = escape(&fig.title)
            );
        }
        html.push_str("</ul></nav>\n");
    }
    for (fig, files) in figures {
        let svg = std::fs::read_to_string(&files.svg)?;
        let _ = write!(
            html,
            "<section class=\"figure\" id=\"fig-{id}\">\n<h2>{title}</h2>\n<p class=\"links\">\
             <a href=\"{json}\">data (.json)</a><a href=\"{png}\">image (.png)</a>\
             <a href=\"{svgl}\">vector (.svg)</a></p>\n<div class=\"chart\">\n{svg}\n</div>\n",
            id = escape(&fig.name),
            title = escape(&fig.title),
            json = escape(&relative_link(dir, &files.json)),
            png = escape(&relative_link(dir, &files.png)),
            svgl = escape(&relative_link(dir, &files.svg)),
            svg = strip_prolog(&svg),
        );
        let notes: Vec<&String> = fig.notes.iter().chain(&files.render_notes).collect();
        if !notes.is_empty() {
            html.push_str("<ul class=\"notes\">\n");
            for note in notes {
                let _ = writeln!(html, "<li>{}</li>", escape(note));
            }
            html.push_str("</ul>\n");
        }
        html.push_str("</section>\n");
    }
    html.push_str(
        r#"<script>
(function () {
  function count() {
    var n = 0;
    document.querySelectorAll("section.figure div.chart > svg").forEach(function (s) {
      try {
        var b = s.getBBox();
        if (b.width > 0 && b.height > 0) { n += 1; }
      } catch (e) { /* not rendered */ }
    });
    document.body.dataset.rendered = String(n);
  }
  count();
  window.addEventListener("load", count);
})();
</script>
</body>
</html>
"#,
    );
    write_atomic(dir, "index.html", html.as_bytes())
}

/// `path` relative to `dir` when it lies inside it, else as given.
fn relative_link(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The SVG text without an XML declaration, doctype or comments before the `<svg` element.
fn strip_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(start) => svg[start..].trim_end(),
        None => svg.trim(),
    }
}

/// Escapes text for HTML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A minimal Markdown rendering: `#` headings, pipe tables, `- ` lists, fenced code blocks and
/// paragraphs; inline markup is shown as text.
fn markdown_to_html(md: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, out: &mut String| {
        if !paragraph.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", escape(&paragraph.join(" ")));
            paragraph.clear();
        }
    };
    while i < lines.len() {
        let line = lines[i].trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            flush(&mut paragraph, &mut out);
            i += 1;
            let mut code = Vec::new();
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            let _ = writeln!(out, "<pre>{}</pre>", escape(&code.join("\n")));
            i += 1;
        } else if trimmed.starts_with('|') {
            flush(&mut paragraph, &mut out);
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(lines[i].trim());
                i += 1;
            }
            out.push_str(&table_to_html(&rows));
        } else if trimmed.starts_with("- ") {
            flush(&mut paragraph, &mut out);
            out.push_str("<ul>\n");
            while i < lines.len() {
                let Some(item) = lines[i].trim().strip_prefix("- ") else {
                    break;
                };
                let _ = writeln!(out, "<li>{}</li>", escape(item));
                i += 1;
            }
            out.push_str("</ul>\n");
        } else if let Some(level) = heading_level(trimmed) {
            flush(&mut paragraph, &mut out);
            let text = trimmed[level..].trim();
            // The page title is the only <h1>; summary headings start at <h2>.
            let h = (level + 1).min(6);
            let _ = writeln!(out, "<h{h}>{}</h{h}>", escape(text));
            i += 1;
        } else if trimmed.is_empty() {
            flush(&mut paragraph, &mut out);
            i += 1;
        } else {
            paragraph.push(trimmed);
            i += 1;
        }
    }
    flush(&mut paragraph, &mut out);
    out
}

/// The level of a Markdown heading line (`## x` → 2), if it is one.
fn heading_level(line: &str) -> Option<usize> {
    let level = line.chars().take_while(|&c| c == '#').count();
    let heading = (1..=6).contains(&level) && line[level..].starts_with(' ');
    heading.then_some(level)
}

/// A pipe table: the first row is the header, `|---|` rows are skipped.
fn table_to_html(rows: &[&str]) -> String {
    let cells = |row: &str| -> Vec<String> {
        let inner = row.trim().trim_start_matches('|');
        let inner = inner.strip_suffix('|').unwrap_or(inner);
        inner.split('|').map(|c| c.trim().to_owned()).collect()
    };
    let is_separator = |row: &str| {
        row.chars()
            .all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'))
            && row.contains('-')
    };
    let mut out = String::from("<table>\n");
    let mut header_done = false;
    for row in rows {
        if is_separator(row) {
            continue;
        }
        let tag = if header_done { "td" } else { "th" };
        out.push_str("<tr>");
        for c in cells(row) {
            let _ = write!(out, "<{tag}>{}</{tag}>", escape(&c));
        }
        out.push_str("</tr>\n");
        header_done = true;
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table_headings_and_code() {
        let html = markdown_to_html(
            "# Summary\n\n| a | b |\n|---|--:|\n| 1 | <2> |\n\ntext\nmore\n\n```\ncode & x\n```\n\n- one\n- two\nafter\n",
        );
        assert!(html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<p>after</p>"));
        assert!(html.contains("<h2>Summary</h2>"));
        assert!(html.contains("<tr><th>a</th><th>b</th></tr>"));
        assert!(html.contains("<tr><td>1</td><td>&lt;2&gt;</td></tr>"));
        assert!(html.contains("<p>text more</p>"));
        assert!(html.contains("<pre>code &amp; x</pre>"));
    }

    #[test]
    fn prolog_stripped() {
        assert_eq!(
            strip_prolog("<?xml version=\"1.0\"?>\n<svg a>x</svg>\n"),
            "<svg a>x</svg>"
        );
    }
}
