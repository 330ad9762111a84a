//! The README's quick start, run as a technician runs it: the `serve` block after the
//! `walkthrough:serve` marker is started in a temporary directory, then every command of the
//! block after `walkthrough:commands` runs top to bottom in one bash, under a terminal (so
//! `jars user add` prompts for its password as it does for a person), and each command's output
//! shown below it (`# …` lines) must match what it printed, up to ids, times and the port.
//!
//! Placeholders filled: `jars` and `cargo run --release --` are the binary under test, port 8888
//! a free port (in the config every
//! command reads, `JARS_CONFIG`), `…` in `password=…` the password typed at the prompts, and the example event id
//! the one `/jars/create` printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, output_with_stdin, stderr, JARS};

const README: &str = include_str!("../../../README.md");
/// The event id the README shows; later commands use the one `/jars/create` printed instead.
const EXAMPLE_EVENT: &str = "5e0b9230-086c-406f-a26c-13ff3a8d3880";
const PASSWORD: &str = "walkthrough-password";

/// The first ```sh block after `marker`.
fn block_after(marker: &str) -> &'static str {
    let start = README
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker} marker"));
    let rest = &README[start..];
    let open = rest.find("```sh\n").expect("a sh block after the marker") + "```sh\n".len();
    let len = rest[open..].find("```").expect("the block ends");
    &rest[open..open + len]
}

/// One command of the walkthrough and the output shown under it.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

/// The block's commands (`\` continuations joined) with the `# ` lines that follow each.
fn steps(block: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if continued {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
        } else if let Some(output) = line.strip_prefix("# ") {
            steps
                .last_mut()
                .expect("output before any command")
                .shown
                .push(output.to_string());
        } else if !line.trim().is_empty() {
            steps.push(Step {
                command: line.to_string(),
                shown: Vec::new(),
            });
        }
        continued = line.ends_with('\\');
    }
    steps
}

/// `text` with what differs from run to run replaced: event ids, times, runs of spaces.
fn shape(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            let mut w = w.to_string();
            for (i, _) in w.clone().match_indices(|c: char| c.is_ascii_hexdigit()) {
                if let Some(candidate) = w.get(i..i + 36) {
                    if uuid::Uuid::try_parse(candidate).is_ok() {
                        w.replace_range(i..i + 36, "<id>");
                        break;
                    }
                }
            }
            w
        })
        .collect();
    let mut joined = words.join(" ");
    // YYYY-MM-DD HH:MM:SS
    let is_time = |t: &[u8]| {
        t.len() == 19
            && t.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b' ',
                13 | 16 => c == b':',
                _ => c.is_ascii_digit(),
            })
    };
    while let Some(i) =
        (0..joined.len().saturating_sub(18)).find(|&i| is_time(&joined.as_bytes()[i..i + 19]))
    {
        joined.replace_range(i..i + 19, "<time>");
    }
    joined
}

/// Starts the README's `serve` block in `dir` on `port`, and waits until it is ready.
fn start_serve(dir: &Path, bin: &Path, config: &Path, port: u16) -> std::process::Child {
    let serve = block_after("<!-- walkthrough:serve").trim();
    assert_eq!(serve.lines().count(), 1, "one command: {serve}");
    let serve = serve.replace("cargo run --release --", "jars");
    let child = Command::new("bash")
        .args(["-c", &format!("exec {serve}")])
        .current_dir(dir)
        .env("PATH", path_with(bin))
        .env("JARS_CONFIG", config)
        .env_remove("JARS_DATA_DIR")
        .env_remove("JARS_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{port}/readyz");
    while !Command::new("curl")
        .args(["-fs", "-o", "/dev/null", &url])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// `PATH` with `bin` (holding `jars`) first.
fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg_attr(
    not(all(jars_has = "curl", jars_has = "jq", jars_has = "script")),
    ignore = "needs curl, jq and script(1) to run the walkthrough, not all found when the tests were built"
)]
#[test]
fn readme_quick_start_runs_verbatim() {
    let missing: Vec<&str> = ["bash", "curl", "jq", "script"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    assert!(
        missing.is_empty(),
        "the README walkthrough needs {missing:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let bin = p.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(JARS, bin.join("jars")).unwrap();
    let work = p.join("station");
    std::fs::create_dir(&work).unwrap();
    // The port: every command reads it from the config, as an installed jars would.
    let port = free_port();
    let config = p.join("jars.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{port}\"\n")).unwrap();
    let mut serve = start_serve(&work, &bin, &config, port);

    let steps = steps(block_after("<!-- walkthrough:commands"));
    assert!(steps.len() >= 6, "{steps:?}");
    let fill = |text: &str| text.replace("127.0.0.1:8888", &format!("127.0.0.1:{port}"));
    // One script: each step's output to its own files, so variables (TOKEN) carry on.
    let out = p.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut script = String::from("set -u\n");
    let mut prompts = 0;
    for (i, step) in steps.iter().enumerate() {
        let command = fill(&step.command)
            .replace("password=…", &format!("password={PASSWORD}"))
            .replace(EXAMPLE_EVENT, "${WALK_EVENT}");
        if command.starts_with("jars user add") && !command.contains("--password-stdin") {
            prompts += 2;
        }
        let o = out.join(i.to_string());
        script.push_str(&format!(
            "{{ {command}\n}} >'{o}.out' 2>'{o}.err'; echo $? >'{o}.rc'\n",
            o = o.display()
        ));
        if step.shown.iter().any(|l| l.contains(EXAMPLE_EVENT)) && !script.contains("WALK_EVENT=") {
            script.push_str(&format!(
                "WALK_EVENT=$(grep -oE '[0-9a-f]{{8}}-[0-9a-f-]{{27}}' '{}.out' | head -n1)\n",
                o.display()
            ));
        }
    }
    std::fs::write(p.join("walkthrough.sh"), &script).unwrap();
    // Under a terminal (script(1)), typing the password at each prompt.
    let mut run = Command::new("script");
    run.args([
        "-qec",
        &format!("bash {}", p.join("walkthrough.sh").display()),
    ])
    .arg("/dev/null")
    .current_dir(&work)
    .env("PATH", path_with(&bin))
    .env("JARS_CONFIG", &config)
    .env_remove("JARS_DATA_DIR")
    .env_remove("JARS_DATABASE_URL");
    let terminal = output_with_stdin(run, &format!("{PASSWORD}\n").repeat(prompts));
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(terminal.status.success(), "{}", stderr(&terminal));

    for (i, step) in steps.iter().enumerate() {
        let read =
            |ext: &str| std::fs::read_to_string(out.join(format!("{i}.{ext}"))).unwrap_or_default();
        let context = format!(
            "step {i}: {}\nstdout: {}\nstderr: {}",
            step.command,
            read("out"),
            read("err")
        );
        assert_eq!(read("rc").trim(), "0", "{context}");
        let printed = read("out");
        let printed: Vec<&str> = printed.lines().collect();
        assert!(printed.len() >= step.shown.len(), "{context}");
        for (shown, got) in step.shown.iter().zip(&printed) {
            assert_eq!(shape(&fill(shown)), shape(got), "{context}");
            assert!(!got.is_empty(), "{context}");
        }
    }
    // The prompts really ran: both users exist, alice with the password typed.
    let users = std::fs::read_to_string(work.join("jars-data/users.toml")).unwrap();
    assert!(
        users.contains("\"alice\"") && users.contains("\"root\""),
        "{users}"
    );
}
