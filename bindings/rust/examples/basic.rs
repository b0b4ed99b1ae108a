//! Usage: basic URL [CA_FILE]   e.g. against barrage-mockserver:
//!   barrage-mockserver --port 0 --write-ca /tmp/ca.pem &
//!   cargo run --example basic -- https://127.0.0.1:PORT/v1/chat/completions /tmp/ca.pem
use barrage::{Config, Engine, Error, Request};
use std::time::Duration;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "https://api.openai.com/v1/chat/completions".into());
    let mut config = Config::from_env()?.max_inflight(8);
    if let Some(ca) = args.next() {
        config = config.ca_file(ca);
    }
    let engine = Engine::new(config)?;
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();

    let reqs = ["What is 2+2?", "Name a colour.", "Say hi."]
        .iter()
        .map(|q| {
            Request::new(url.as_str())
                .header("Authorization", &format!("Bearer {key}"))
                .json(format!(
                    r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{q}"}}],"max_tokens":16}}"#
                ))
                .deadline(Duration::from_secs(30))
        })
        .collect();
    for (i, r) in engine.run_all(reqs).into_iter().enumerate() {
        match r {
            Ok(resp) => println!(
                "#{i}: HTTP {} in {:?}, tokens {:?}/{:?}: {}",
                resp.status(),
                resp.timings().total,
                resp.prompt_tokens(),
                resp.completion_tokens(),
                resp.text()
            ),
            Err(e) => println!("#{i}: {e}"),
        }
    }
    Ok(())
}
