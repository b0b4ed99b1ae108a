//! Usage: stream URL [CA_FILE]   e.g. against barrage-mockserver:
//!   barrage-mockserver --port 0 --write-ca /tmp/ca.pem --stream-interval-ms 50 &
//!   cargo run --example stream -- https://127.0.0.1:PORT/v1/chat/completions /tmp/ca.pem
//! Prints each server-sent event as it arrives, then the final result's timing.
use barrage::{Config, Engine, Error, Request};
use std::io::Write;
use std::time::Duration;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "https://api.openai.com/v1/chat/completions".into());
    let mut config = Config::from_env()?.stream_idle_timeout(Duration::from_secs(30));
    if let Some(ca) = args.next() {
        config = config.ca_file(ca);
    }
    let engine = Engine::new(config)?;
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    let req = Request::new(url.as_str())
        .header("Authorization", &format!("Bearer {key}"))
        .json(
            r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},
                "messages":[{"role":"user","content":"Count to ten."}]}"#,
        )
        .first_token_timeout(Duration::from_secs(20));

    let mut stream = engine.stream(&req)?;
    for event in &mut stream {
        let event = event?;
        println!("event {}: {}", event.event_index().unwrap_or(0), event.text());
        std::io::stdout().flush().ok();
    }
    if let Some(done) = stream.final_response() {
        println!(
            "HTTP {}: {} events, ttft {:?}, gaps max {:?} mean {:?}, tokens {:?}/{:?}, total {:?}",
            done.status(),
            done.events(),
            done.ttft(),
            done.gap_max(),
            done.gap_mean(),
            done.prompt_tokens(),
            done.completion_tokens(),
            done.timings().total
        );
    }
    Ok(())
}
