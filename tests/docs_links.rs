//! The repository stands alone: its documents link only to files it holds, and nothing in it
//! cites a file outside it.
//!
//! * Every relative Markdown link `[text](path)` or `[text](path#anchor)` in every `*.md`
//!   file points to a file or folder of the repository, and an `#anchor` into a `.md` file
//!   (its own included) names one of that file's headings by its GitHub slug.
//! * No `.md`, `.rs`, `.toml`, `.sh`, `.py` or `.proto` file mentions the original design
//!   document or the sample-image folder it named (neither is in the repository), nor a
//!   relative path starting with `../` that leads out of the repository.
//! * A `docs/<file>.md#anchor` cited in code (`.rs`, `.toml`, `.sh`, `.py`) names a document
//!   and a heading that exist.
//!
//! The walk skips `.git`, build and run outputs (`target`, `output`, the fuzzers' `corpus`,
//! `artifacts` and `coverage`), Python virtual environments (`.venv*`) and folders whose
//! `.gitignore` ignores everything in them (cluster and node folders made by the CLI). It
//! reads only files inside the repository and needs no binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Text that must not appear: the names of files that are not in the repository. Spelled
/// in two halves so that this file does not contain them.
const FORBIDDEN: [&str; 3] = [
    concat!("DESIGN", ".md"),
    concat!("DESIGN", " §"),
    concat!("assets/", "sample_images"),
];

/// File types whose text is checked for outside references.
const CHECKED_EXTENSIONS: [&str; 6] = ["md", "rs", "toml", "sh", "py", "proto"];

/// File types in which `docs/<file>.md#anchor` citations are checked.
const CODE_EXTENSIONS: [&str; 4] = ["rs", "toml", "sh", "py"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Folders the walk does not enter.
fn skipped(dir: &Path) -> bool {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(
        name,
        ".git" | "target" | "output" | "corpus" | "artifacts" | "coverage"
    ) || name.starts_with(".venv")
    {
        return true;
    }
    // A folder that git ignores whole (the CLI writes `*` into folders of private keys).
    std::fs::read_to_string(dir.join(".gitignore"))
        .is_ok_and(|g| g.lines().any(|l| l.trim() == "*"))
}

/// Every file of the repository the checks read, as paths relative to the root, sorted.
fn repository_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                if !skipped(&path) {
                    pending.push(path);
                }
            } else if let Ok(relative) = path.strip_prefix(&root) {
                files.push(relative.to_path_buf());
            }
        }
    }
    files.sort();
    files
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Resolves `target` (with `/` separators) against the folder `base`, both relative to the
/// repository root, without touching the disk; `None` if it leaves the repository.
fn resolve(base: &Path, target: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other.to_owned()),
        }
    }
    Some(parts.iter().collect())
}

/// `%XX` escapes decoded (link targets may escape spaces and the like).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes.get(i) == Some(&b'%'))
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
        } else {
            out.extend(bytes.get(i));
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of a Markdown text outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => lines.push((i + 1, line)),
            _ => {}
        }
    }
    lines
}

/// `line` with its inline code spans (`` `…` ``) removed.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links and images of one line of prose: what stands between
/// `](` and its closing parenthesis, without an optional title.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        rest = rest.get(at + 2..).unwrap_or("");
        let target = if let Some(inner) = rest.strip_prefix('<') {
            inner.split('>').next().unwrap_or("").to_owned()
        } else {
            let mut depth = 0usize;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = i;
                        break;
                    }
                    ')' => depth -= 1,
                    c if c.is_whitespace() => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            rest.get(..end).unwrap_or("").to_owned()
        };
        targets.push(target);
    }
    targets
}

/// GitHub's anchor for a heading's text: inline links reduced to their text, lower case,
/// everything but letters, digits, `_`, `-` and spaces dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` → `text`.
    while let Some(open) = rest.find('[') {
        let (before, after) = rest.split_at(open);
        text.push_str(before);
        match (after.find("]("), after.find(')')) {
            (Some(close), Some(end)) if close < end => {
                text.push_str(after.get(1..close).unwrap_or(""));
                rest = after.get(end + 1..).unwrap_or("");
            }
            _ => {
                text.push('[');
                rest = after.get(1..).unwrap_or("");
            }
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings, duplicates numbered as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        let Some(title) = line.get(hashes..) else {
            continue;
        };
        if !(1..=6).contains(&hashes) || !title.starts_with(' ') {
            continue;
        }
        let title = title.trim().trim_end_matches('#').trim_end();
        let base = slug(title);
        let count = seen.entry(base.clone()).or_insert(0);
        let anchor = if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        anchors.insert(anchor);
    }
    anchors
}

/// The problems of one link target written in `file` (relative to the root).
fn check_link(
    file: &Path,
    target: &str,
    anchors_of: &mut impl FnMut(&Path) -> BTreeSet<String>,
) -> Option<String> {
    if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else {
        let base = file.parent().unwrap_or(Path::new(""));
        match resolve(base, &percent_decode(path)) {
            Some(resolved) => resolved,
            None => return Some(format!("`{target}` leads out of the repository")),
        }
    };
    if !root().join(&resolved).exists() {
        return Some(format!("`{target}`: {} does not exist", resolved.display()));
    }
    match anchor {
        Some(anchor) if extension(&resolved) == "md" => {
            let known = anchors_of(&resolved);
            (!known.contains(&percent_decode(anchor))).then(|| {
                format!(
                    "`{target}`: {} has no heading with the anchor `#{anchor}`",
                    resolved.display()
                )
            })
        }
        _ => None,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A cache of the headings' anchors per Markdown file.
fn anchor_cache() -> impl FnMut(&Path) -> BTreeSet<String> {
    let mut cache: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    move |path: &Path| {
        cache
            .entry(path.to_path_buf())
            .or_insert_with(|| anchors(&read(path)))
            .clone()
    }
}

/// Characters of a path as the checks read it out of running text.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '~' | '+' | '@' | '$')
}

/// The relative paths starting with `../` in `text` (not those continuing a longer path,
/// such as `$dir/../x` or `"/../x"` appended to a folder).
fn dot_dot_paths(text: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    for (at, _) in text.match_indices("../") {
        if text
            .get(..at)
            .and_then(|b| b.chars().next_back())
            .is_some_and(is_path_char)
        {
            continue;
        }
        let rest = text.get(at..).unwrap_or("");
        let end = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
        paths.push(rest.get(..end).unwrap_or(""));
    }
    paths
}

/// The `docs/<file>.md` or `docs/<file>.md#anchor` citations in `text`.
fn docs_citations(text: &str) -> Vec<&str> {
    let mut cited = Vec::new();
    for (at, _) in text.match_indices("docs/") {
        if text
            .get(..at)
            .and_then(|b| b.chars().next_back())
            .is_some_and(is_path_char)
        {
            continue;
        }
        let rest = text.get(at..).unwrap_or("");
        let end = rest
            .find(|c: char| !(is_path_char(c) || c == '#'))
            .unwrap_or(rest.len());
        let cite = rest.get(..end).unwrap_or("").trim_end_matches('.');
        if cite.split('#').next().is_some_and(|p| p.ends_with(".md")) {
            cited.push(cite);
        }
    }
    cited
}

#[test]
fn every_relative_markdown_link_resolves_inside_the_repository() {
    let files = repository_files();
    let markdown: Vec<&PathBuf> = files.iter().filter(|f| extension(f) == "md").collect();
    assert!(
        markdown
            .iter()
            .any(|f| f.as_path() == Path::new("README.md"))
            && markdown.iter().any(|f| f.starts_with("docs")),
        "the walk found no README.md or docs: {markdown:?}"
    );
    let mut anchors_of = anchor_cache();
    let mut problems = Vec::new();
    let mut links = 0;
    for file in markdown {
        let text = read(file);
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                links += 1;
                if let Some(problem) = check_link(file, &target, &mut anchors_of) {
                    problems.push(format!("{}:{number}: {problem}", file.display()));
                }
            }
        }
    }
    assert!(links > 0, "no links found: the extraction is broken");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn nothing_cites_a_file_outside_the_repository() {
    let mut problems = Vec::new();
    for file in repository_files() {
        if !CHECKED_EXTENSIONS.contains(&extension(&file)) {
            continue;
        }
        let text = read(&file);
        let base = file.parent().unwrap_or(Path::new(""));
        for (number, line) in text.lines().enumerate() {
            let at = format!("{}:{}", file.display(), number + 1);
            for forbidden in FORBIDDEN {
                if line.contains(forbidden) {
                    problems.push(format!(
                        "{at}: mentions `{forbidden}`, which is not in the repository"
                    ));
                }
            }
            for path in dot_dot_paths(line) {
                if resolve(base, path).is_none() {
                    problems.push(format!("{at}: `{path}` leads out of the repository"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "outside references:\n{}",
        problems.join("\n")
    );
}

#[test]
fn docs_cited_in_code_exist_with_their_headings() {
    let mut anchors_of = anchor_cache();
    let mut problems = Vec::new();
    let mut cited = 0;
    for file in repository_files() {
        if !CODE_EXTENSIONS.contains(&extension(&file)) {
            continue;
        }
        let text = read(&file);
        for (number, line) in text.lines().enumerate() {
            for cite in docs_citations(line) {
                cited += 1;
                // Citations in code are relative to the repository root.
                if let Some(problem) = check_link(Path::new("ROOT.md"), cite, &mut anchors_of) {
                    problems.push(format!("{}:{}: {problem}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(cited > 0, "no citations found: the extraction is broken");
    assert!(
        problems.is_empty(),
        "bad citations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checks_themselves_find_what_they_look_for() {
    // Slugs as GitHub makes them.
    assert_eq!(slug("2. Thresholds"), "2-thresholds");
    assert_eq!(
        slug("3. What is leaked, to whom"),
        "3-what-is-leaked-to-whom"
    );
    assert_eq!(
        slug("DKG (`ClusterClient::run_dkg`, `client/dkg.rs`)"),
        "dkg-clusterclientrun_dkg-clientdkgrs"
    );
    assert_eq!(
        slug("Stage-2: search and retrieve"),
        "stage-2-search-and-retrieve"
    );
    assert_eq!(slug("See [the docs](x.md) — twice"), "see-the-docs--twice");
    let text = "# A\n## B\n```\n# not a heading\n```\n## B\n#no\n";
    let found: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(found, ["a", "b", "b-1"]);

    // Links, not code.
    assert_eq!(
        link_targets("see [a](x.md#y), ![i](f.png \"t\") and `[c](not.md)` [d](<s p.md>)"),
        ["x.md#y", "f.png", "s p.md"]
    );
    assert_eq!(prose_lines("a\n```\n[x](y)\n```\nb").len(), 2);

    // Paths out of the repository, and those that stay in it. (Paths and citations that
    // must fail are spelled in pieces, or this file would fail the checks above.)
    let out = concat!("..", "/../x");
    assert_eq!(
        resolve(Path::new("docs"), "../README.md"),
        Some(PathBuf::from("README.md"))
    );
    assert_eq!(resolve(Path::new("docs"), out), None);
    assert_eq!(resolve(Path::new(""), "../x"), None);
    assert_eq!(
        dot_dot_paths(concat!("a \"..", "/../x/y\" and $d/../z")),
        [concat!("..", "/../x/y")]
    );
    let missing = concat!("docs", "/x.md");
    assert_eq!(
        docs_citations(concat!(
            "(`docs/design.md#search-tokens`). see ",
            "docs",
            "/x.md. crates/docs/y.md"
        )),
        ["docs/design.md#search-tokens", missing]
    );

    // A missing file and a missing heading are reported.
    let mut anchors_of = anchor_cache();
    let readme = Path::new("README.md");
    assert!(check_link(readme, "docs/design.md#bench-records", &mut anchors_of).is_none());
    assert!(check_link(readme, missing, &mut anchors_of).is_some());
    let no_heading = concat!("docs", "/design.md#no-such-heading");
    assert!(check_link(readme, no_heading, &mut anchors_of).is_some());
    assert!(check_link(readme, "../outside.md", &mut anchors_of).is_some());
    assert!(check_link(readme, "https://example.org/x", &mut anchors_of).is_none());
}
