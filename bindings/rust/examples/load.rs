//! The Rust twin of examples/load_c.c, to measure the binding's overhead:
//!   load URL N INFLIGHT BACKEND(auto|io_uring|epoll) [CA_FILE]
//! prints the same summary line (requests= ok= errors= seconds= req_per_s=
//! cpu_us_per_req= maxrss_kb=). Every result is checked.
use barrage::{Backend, Config, Engine, Request};
use std::time::Instant;

#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}
fn rusage() -> Rusage {
    let mut r = Rusage { utime: [0; 2], stime: [0; 2], rest: [0; 14] };
    unsafe { getrusage(0, &mut r) }; // RUSAGE_SELF
    r
}
fn cpu_us(r: &Rusage) -> i64 {
    (r.utime[0] + r.stime[0]) * 1_000_000 + r.utime[1] + r.stime[1]
}

const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}],"max_tokens":16}"#;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: load URL N INFLIGHT BACKEND [CA_FILE]");
        std::process::exit(2);
    }
    let n: usize = a[2].parse().expect("N");
    let inflight: u32 = a[3].parse().expect("INFLIGHT");
    let backend = match a[4].as_str() {
        "io_uring" => Backend::IoUring,
        "epoll" => Backend::Epoll,
        _ => Backend::Auto,
    };
    let mut cfg = Config::new().max_inflight(inflight).max_conns_per_host(inflight).backend(backend);
    if let Some(ca) = a.get(5) {
        cfg = cfg.ca_file(ca);
    }
    let e = Engine::new(cfg).expect("engine");
    let mut req = Request::new(a[1].as_str()).json(BODY);
    let mut seen = vec![false; n];
    let (mut submitted, mut finished, mut ok, mut errors) = (0usize, 0usize, 0usize, 0usize);
    let mut out = Vec::with_capacity(256);
    let t0 = Instant::now();
    let c0 = cpu_us(&rusage());
    while finished < n {
        while submitted < n {
            req = req.user_data(submitted as u64);
            match e.submit(&req) {
                Ok(_) => submitted += 1,
                Err(barrage::Error::Full(_)) => break,
                Err(err) => panic!("submit: {err}"),
            }
        }
        e.poll(None).expect("poll");
        out.clear();
        e.results(&mut out);
        for r in &out {
            let k = r.user_data() as usize;
            assert!(k < submitted && !seen[k], "bad or duplicate result {k}");
            seen[k] = true;
            finished += 1;
            if r.is_ok() && r.status() == 200 && !r.body().is_empty() && r.error_message().is_empty()
                && r.prompt_tokens().is_some() && r.completion_tokens().is_some()
            {
                ok += 1;
            } else {
                errors += 1;
                if errors <= 10 {
                    eprintln!("load: #{k}: {:?}", r.error());
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let ru = rusage();
    let cpu = cpu_us(&ru) - c0;
    let st = e.stats().unwrap();
    println!(
        "requests={n} ok={ok} errors={errors} seconds={secs:.3} req_per_s={:.0} cpu_us_per_req={:.1} maxrss_kb={} backend={:?} conns_opened={}",
        n as f64 / secs,
        cpu as f64 / n as f64,
        ru.rest[0],
        e.backend(),
        st.connections_opened
    );
    std::process::exit(if errors == 0 { 0 } else { 1 });
}
