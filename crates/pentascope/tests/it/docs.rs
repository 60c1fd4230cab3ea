//! The README's and docs' console sessions are run as written, so they
//! cannot go stale: every ```` ```console ```` block is a shell session whose
//! `$ ` lines are run, in order, by one `bash` against a fresh server, and
//! whose other lines are the output each command must print.
//!
//! - The session runs in a folder laid out like a clone: the repository's
//!   top-level entries linked in, `../shared/fixtures` the fixture corpus,
//!   `pentascope` and the venv's `python3` first on `PATH`. The server is
//!   started on `./data` (the default data directory), and every address
//!   `localhost:50NN`, `127.0.0.1:50NN` or `lab:50NN` in a command is its.
//! - A line `<!-- console env: NAME=VALUE … -->` right above a block sets
//!   the server's environment (e.g. `PENTASCOPE_AUTH=required`).
//! - Output is compared with whitespace removed; `…` or `...` stands for
//!   any text; timestamps, HTTP dates, 32-digit hex ids and signed cursors
//!   are compared as what they are, not by value; decimal fractions to 12
//!   significant digits (a sum's last bits may differ between machines).
//! - A ```` ```pycon ```` block is a Python session (the client of
//!   `clients/python` importable) run by `doctest` (`...` standing for any
//!   text, whitespace normalised) against the server of the block above it
//!   in the same document, so it continues that session.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::python::python_with;
use crate::util::{fixtures_dir, Server};

/// How long one block may run.
const BLOCK_TIMEOUT_SECONDS: u32 = 300;

/// The marker printed before each command's output.
const MARKER: &str = "@@pentascope-docs-command@@";

#[test]
#[ignore = "needs the Python venv (NumPy, tifffile, the client's packages), curl, jq and xxd; run by .ci/run"]
fn console_sessions_in_the_readme_and_docs_run_as_written() {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("the repository");
    let python =
        python_with("numpy, tifffile, scipy, skimage, sklearn, requests_toolbelt, tqdm, tusclient");
    let mut documents = vec![repo.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    documents.extend(docs);

    let mut blocks = 0;
    let mut failures = String::new();
    for document in &documents {
        let text = std::fs::read_to_string(document).expect("a readable document");
        let name = document.strip_prefix(&repo).unwrap_or(document).display();
        let mut session = None;
        for block in console_blocks(&text) {
            blocks += 1;
            if let Err(why) = run_block(&repo, &python, &block, &mut session) {
                let _ = writeln!(failures, "\n== {name}:{}\n{why}", block.line);
            }
        }
    }
    assert!(
        blocks >= 10,
        "only {blocks} console blocks found: the extraction is broken"
    );
    assert!(
        failures.is_empty(),
        "console sessions that no longer run as written:{failures}"
    );
}

/// One ```` ```console ```` or ```` ```pycon ```` block.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// A Python session (its text in `python`), not a shell one.
    python: Option<String>,
    /// The server's environment, from a `<!-- console env: … -->` line.
    env: Vec<(String, String)>,
    /// The commands (continuation lines joined) and the output each shows.
    steps: Vec<Step>,
}

struct Step {
    command: String,
    expected: String,
}

fn console_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        if fence != "```console" && fence != "```pycon" {
            i += 1;
            continue;
        }
        let pycon = fence == "```pycon";
        let env = i
            .checked_sub(1)
            .and_then(|above| lines[above].trim().strip_prefix("<!-- console env:"))
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(|pairs| {
                pairs
                    .split_whitespace()
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("NAME=VALUE");
                        (k.to_string(), v.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let line = i + 1;
        let mut steps: Vec<Step> = Vec::new();
        i += 1;
        if pycon {
            let start = i;
            while i < lines.len() && lines[i].trim_end() != "```" {
                i += 1;
            }
            let mut python = lines[start..i].join("\n");
            python.push('\n');
            blocks.push(Block {
                line,
                python: Some(python),
                env,
                steps,
            });
            i += 1;
            continue;
        }
        while i < lines.len() && lines[i].trim_end() != "```" {
            if let Some(command) = lines[i].strip_prefix("$ ") {
                let mut command = command.to_string();
                while command.ends_with('\\') && i + 1 < lines.len() {
                    i += 1;
                    command.push('\n');
                    command.push_str(lines[i]);
                }
                steps.push(Step {
                    command,
                    expected: String::new(),
                });
            } else if let Some(step) = steps.last_mut() {
                step.expected.push_str(lines[i]);
                step.expected.push('\n');
            }
            i += 1;
        }
        blocks.push(Block {
            line,
            python: None,
            env,
            steps,
        });
        i += 1;
    }
    blocks
}

/// A session's folder (laid out like a clone) and its server.
struct Session {
    // Dropped after the server, which uses it.
    server: Server,
    work: PathBuf,
    _root: tempfile::TempDir,
}

impl Session {
    fn start(repo: &Path, env: &[(String, String)]) -> Session {
        let root = tempfile::Builder::new()
            .prefix("pentascope-docs-")
            .tempdir()
            .expect("a temporary folder");
        let work = root.path().join("pentascope");
        std::fs::create_dir_all(&work).expect("the session's folder");
        for entry in std::fs::read_dir(repo).expect("the repository") {
            let entry = entry.expect("an entry");
            let name = entry.file_name();
            if name == "target" || name == "data" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), work.join(&name)).expect("a link");
        }
        std::fs::create_dir_all(root.path().join("shared")).expect("../shared");
        std::os::unix::fs::symlink(fixtures_dir(), root.path().join("shared/fixtures"))
            .expect("../shared/fixtures");
        let server = Server::start_configured(&work.join("data"), env);
        Session {
            server,
            work,
            _root: root,
        }
    }

    /// A command in the session's folder, with `pentascope` and the venv's
    /// Python first on `PATH` and the Python client importable.
    fn command(&self, python: &Path, env: &[(String, String)], program: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_pentascope"))
            .parent()
            .expect("the binary's folder");
        let venv_bin = python.parent().expect("the venv's bin");
        let mut command = Command::new("timeout");
        command
            .arg(BLOCK_TIMEOUT_SECONDS.to_string())
            .arg(program)
            .current_dir(&self.work)
            .env(
                "PATH",
                format!(
                    "{}:{}:{}",
                    bin.display(),
                    venv_bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("PYTHONPATH", self.work.join("clients/python/src"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }
}

/// Runs a block: a console block in a new session, a Python one in the
/// session above it (or a new one). Each step whose output differs, with
/// both outputs.
fn run_block(
    repo: &Path,
    python: &Path,
    block: &Block,
    session: &mut Option<Session>,
) -> Result<(), String> {
    if block.python.is_none() || session.is_none() {
        *session = None; // the previous server stops before the next starts
        *session = Some(Session::start(repo, &block.env));
    }
    let session = session.as_ref().expect("a session");
    let address = session.server.addr().to_string();
    if let Some(text) = &block.python {
        let doctest = session.work.join("session.pycon");
        std::fs::write(&doctest, with_address(text, &address)).expect("write the session");
        let output = session
            .command(python, &block.env, "python3")
            .args([
                "-c",
                "import doctest, sys\n\
                 r = doctest.testfile(sys.argv[1], module_relative=False,\n\
                 optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)\n\
                 sys.exit(1 if r.failed or not r.attempted else 0)",
            ])
            .arg(&doctest)
            .output()
            .expect("run python3");
        return match output.status.success() {
            true => Ok(()),
            false => Err(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )),
        };
    }

    let mut script = String::from("set +e\n");
    for step in &block.steps {
        let command = with_address(&step.command, &address);
        let _ = writeln!(script, "echo '{MARKER}'\n{{ {command}\n}} 2>&1");
    }
    let output = session
        .command(python, &block.env, "bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outputs: Vec<&str> = stdout.split(MARKER).skip(1).collect();
    if outputs.len() != block.steps.len() {
        return Err(format!(
            "ran {} of {} commands (status {}):\n{stdout}\n{}",
            outputs.len(),
            block.steps.len(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut differences = String::new();
    for (step, actual) in block.steps.iter().zip(outputs) {
        if !matches(&step.expected, actual) {
            let _ = writeln!(
                differences,
                "$ {}\nexpected:\n{}\nprinted:\n{}\n",
                step.command,
                step.expected.trim_end(),
                shortened(actual.trim())
            );
        }
    }
    match differences.is_empty() {
        true => Ok(()),
        false => Err(differences),
    }
}

/// `text`, or its first 3,000 characters and how many more there are.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(3000) {
        Some((at, _)) => format!("{}… ({} more bytes)", &text[..at], text.len() - at),
        None => text.to_string(),
    }
}

/// `command` with every documented address replaced by the server's.
fn with_address(command: &str, address: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut rest = command;
    'scan: while !rest.is_empty() {
        for host in ["localhost:", "127.0.0.1:", "lab:"] {
            if let Some(port) = rest.strip_prefix(host) {
                let digits = port.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 4 && port.starts_with("50") {
                    out.push_str(address);
                    rest = &port[digits..];
                    continue 'scan;
                }
            }
        }
        let next = rest.chars().next().expect("not empty");
        out.push(next);
        rest = &rest[next.len_utf8()..];
    }
    out
}

/// Whether `actual` is what `expected` shows, `…`/`...` standing for any
/// text and volatile values compared by kind.
fn matches(expected: &str, actual: &str) -> bool {
    let expected = normalise(expected).replace("...", "…");
    let actual = normalise(actual);
    let pieces: Vec<&str> = expected.split('…').collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if pieces.len() == 1 {
        return actual == first;
    }
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The text without whitespace, with timestamps, HTTP dates, 32-digit hex
/// ids and signed cursors each replaced by its kind.
fn normalise(text: &str) -> String {
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = String::with_capacity(squeezed.len());
    let bytes = squeezed.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &squeezed[i..];
        let (kind, len) = if let Some(len) = iso_timestamp(rest) {
            ("<time>", len)
        } else if let Some(len) = http_date(rest) {
            ("<time>", len)
        } else if let Some(len) = hex_id(rest, i == 0 || !bytes[i - 1].is_ascii_hexdigit()) {
            ("<hex>", len)
        } else if let Some(len) = signed_cursor(rest) {
            ("<cursor>", len)
        } else if let Some((len, value)) = fraction(rest, i == 0 || !is_word(bytes[i - 1])) {
            out.push_str(&format!("{value:.11e}"));
            i += len;
            continue;
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        out.push_str(kind);
        i += len;
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_'
}

/// A decimal fraction (`-12.5`, `1.5e-3`) not inside a word or a dotted
/// number such as a version or an address: its length and value.
fn fraction(s: &str, at_boundary: bool) -> Option<(usize, f64)> {
    let b = s.as_bytes();
    let sign = usize::from(b.first() == Some(&b'-'));
    let int = b[sign..].iter().take_while(|c| c.is_ascii_digit()).count();
    if !at_boundary || int == 0 || b.get(sign + int) != Some(&b'.') {
        return None;
    }
    let frac_start = sign + int + 1;
    let frac = b[frac_start..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if frac == 0 {
        return None;
    }
    let mut end = frac_start + frac;
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let exp_sign = usize::from(matches!(b.get(end + 1), Some(b'-' | b'+')));
        let digits = b[end + 1 + exp_sign..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > 0 {
            end += 1 + exp_sign + digits;
        }
    }
    if b.get(end).is_some_and(|c| is_word(*c)) {
        return None;
    }
    s[..end].parse().ok().map(|v| (end, v))
}

/// `2026-12-06T13:40:02.118Z` (fraction optional).
fn iso_timestamp(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() + 1 {
        return None;
    }
    for (c, want) in b.iter().zip(shape) {
        let ok = if *want == b'd' {
            c.is_ascii_digit()
        } else {
            c == want
        };
        if !ok {
            return None;
        }
    }
    let mut end = shape.len();
    if b[end] == b'.' {
        end += 1;
        end += b[end..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    (b.get(end) == Some(&b'Z')).then_some(end + 1)
}

/// `Mon,07Dec202613:41:17GMT` (whitespace already removed).
fn http_date(s: &str) -> Option<usize> {
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    if !DAYS.iter().any(|d| s.starts_with(d)) {
        return None;
    }
    let end = s.find("GMT")? + 3;
    (end <= 4 + 2 + 3 + 4 + 8 + 3).then_some(end)
}

/// Exactly 32 hex digits (an upload id, a request id, a trace id).
fn hex_id(s: &str, at_boundary: bool) -> Option<usize> {
    let n = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    (at_boundary && n == 32).then_some(n)
}

/// A signed cursor: base64url JSON (`eyJ…`), a dot, its signature.
fn signed_cursor(s: &str) -> Option<usize> {
    if !s.starts_with("eyJ") {
        return None;
    }
    let b64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
    let body = s.bytes().take_while(b64).count();
    let sig = s.as_bytes()[body..]
        .strip_prefix(b".")?
        .iter()
        .take_while(|c| b64(c))
        .count();
    (sig > 0).then_some(body + 1 + sig)
}

#[test]
fn console_output_matching_understands_ellipses_and_volatile_values() {
    assert!(matches("{\"a\":1,\n \"b\":2}\n", "{\"a\":1,\"b\":2}\n"));
    assert!(!matches("{\"a\":1}", "{\"a\":2}"));
    assert!(matches("{\"a\":1, …}", "{\"a\":1,\"b\":[1,2,3]}"));
    assert!(matches("[1, ..., 4]", "[1,2,3,4]"));
    assert!(matches("[0.9587178850688265]", "[0.9587178850688264]"));
    assert!(!matches("[0.9587178850688265]", "[0.9587178850]"));
    assert!(!matches("[1379.58]", "[1379.5822]"));
    assert!(matches("\"version\":\"0.1.0\"", "\"version\":\"0.1.0\""));
    assert!(!matches("\"version\":\"0.1.0\"", "\"version\":\"0.1.1\""));
    assert!(!matches("[1, ..., 5]", "[1,2,3,4]"));
    assert!(!matches("x … y … z", "x y"));
    assert!(matches(
        "\"at\": \"2026-12-06T13:40:02.118Z\"",
        "\"at\":\"2027-01-01T00:00:00Z\""
    ));
    assert!(!matches(
        "\"at\": \"2026-12-06T13:40:02.118Z\"",
        "\"at\":\"soon\""
    ));
    assert!(matches(
        "upload-expires: Mon, 07 Dec 2026 13:41:17 GMT",
        "upload-expires: Tue, 08 Dec 2026 01:02:03 GMT"
    ));
    assert!(matches(
        "location: /uploads/67ea19260cef4936a2e1a16fdb27e815",
        "location: /uploads/0123456789abcdef0123456789abcdef"
    ));
    assert!(!matches(
        "location: /uploads/67ea19260cef4936a2e1a16fdb27e815",
        "location: /uploads/0123456789abcdef0123456789abcdef0"
    ));
    assert!(matches(
        "\"c\":\"eyJxIjoi.QNpx-_1\"",
        "\"c\":\"eyJhIjoxfQ.abc\""
    ));
    assert_eq!(
        with_address(
            "curl http://lab:5000/x localhost:5077 127.0.0.1:80",
            "127.0.0.1:4242"
        ),
        "curl http://127.0.0.1:4242/x 127.0.0.1:4242 127.0.0.1:80"
    );
}
