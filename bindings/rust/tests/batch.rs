//! The safe batch runner against the mock: counts, cost, progress, resume, abort.
mod common;

use barrage::batch::{Batch, Control};
use barrage::{Config, Engine, Error};
use common::Mock;

fn write_input(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let p = dir.join("in.jsonl");
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            r#"{{"custom_id":"c{i}","method":"POST","url":"/v1/chat/completions","body":{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"q{i}"}}]}}}}"#
        ));
        s.push('\n');
    }
    std::fs::write(&p, s).unwrap();
    p
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("barrage-rs-batch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn batch_runs_reports_cost_and_resumes() {
    let mock = Mock::start(&[]);
    // The key comes from the environment only; the mock ignores its value.
    std::env::set_var("BARRAGE_RS_BATCH_KEY", "sk-test");
    let dir = tmpdir("ok");
    let input = write_input(&dir, 30);
    let output = dir.join("out.jsonl");
    let batch = Batch::new(&input, &output).endpoint(&mock.base).api_key_env("BARRAGE_RS_BATCH_KEY").resume(true);

    let mut engine = Engine::new(Config::new().ca_file(&mock.ca)).unwrap();
    let mut calls = 0;
    let fin = batch
        .run(&mut engine, |p| {
            calls += 1;
            assert!(p.done <= p.total);
            Control::Continue
        })
        .expect("batch ran");
    assert!(calls >= 1, "progress closure never called");
    assert_eq!((fin.total, fin.done, fin.ok, fin.failed), (30, 30, 30, 0), "{fin:?}");
    assert!(fin.prompt_tokens > 0 && fin.completion_tokens > 0, "{fin:?}");
    assert!(fin.cost_usd > 0.0, "no cost for gpt-4o-mini: {fin:?}");
    let lines = std::fs::read_to_string(&output).unwrap();
    assert_eq!(lines.lines().count(), 30);
    for i in 0..30 {
        assert!(lines.contains(&format!("\"custom_id\":\"c{i}\"")), "c{i} missing");
    }

    // Resume: everything is in the output already, nothing runs again.
    let mut engine = Engine::new(Config::new().ca_file(&mock.ca)).unwrap();
    let fin = batch.run(&mut engine, |_| Control::Continue).unwrap();
    assert_eq!((fin.total, fin.skipped, fin.done), (0, 30, 0), "{fin:?}");
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 30);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn abort_from_the_closure_and_bad_input_are_errors() {
    let mock = Mock::start(&[]);
    let dir = tmpdir("abort");
    let input = write_input(&dir, 5);
    // Aborting at the first progress call cancels the run.
    let mut engine = Engine::new(Config::new().ca_file(&mock.ca)).unwrap();
    let r = Batch::new(&input, dir.join("out.jsonl"))
        .endpoint(&format!("{}/", mock.base))
        .header("x-mock-latency-ms", "2000")
        .api_key_env("BARRAGE_RS_BATCH_KEY_ABORT")
        .run(&mut engine, |_| Control::Abort);
    assert!(matches!(r, Err(Error::Cancelled(_))), "{r:?}");

    let mut engine = Engine::new(Config::new()).unwrap();
    let r = Batch::new(dir.join("missing.jsonl"), dir.join("o.jsonl")).run(&mut engine, |_| Control::Continue);
    match r {
        Err(Error::Invalid(m)) => assert!(!m.is_empty()),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
