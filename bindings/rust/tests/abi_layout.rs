//! Contract 2: the crate's struct mirrors, option table and status codes
//! against the header, as printed by $BARRAGE_ABI_LAYOUT (tests/abi/abi_layout).
use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};

use barrage::sys::{self, *};
use serde_json::Value;

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

macro_rules! mirror {
    ($t:ident { $($f:ident),* $(,)? }) => {
        (stringify!($t), size_of::<$t>(), align_of::<$t>(),
         vec![$((stringify!($f), offset_of!($t, $f), field_size(|s: &$t| &s.$f))),*])
    };
}

fn layout() -> Value {
    let exe = std::env::var("BARRAGE_ABI_LAYOUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../build/tests/abi/abi_layout").to_owned()
    });
    let out = std::process::Command::new(&exe).output().unwrap_or_else(|e| panic!("run {exe}: {e}"));
    assert!(out.status.success(), "{exe} failed");
    serde_json::from_slice(&out.stdout).expect("abi_layout JSON")
}

#[test]
fn struct_mirrors_match_the_header() {
    let j = layout();
    let mirrors = vec![
        mirror!(brg_header { name, value }),
        mirror!(brg_request { size, flags, method, url, headers, n_headers, body, body_len, user_data, timeout_ms, deadline_ms, max_retries, token_estimate, limit_key, group, first_token_timeout_ms, stream_idle_timeout_ms }),
        mirror!(brg_result { size, flags, id, user_data, status, http_status, attempts, reserved0, body, body_len, error, queued_us, ttfb_us, total_us, prompt_tokens, completion_tokens, sent_us, request_id, ttft_us, events, reserved1, gap_max_us, gap_mean_us, retry_after_ms, headers, headers_len }),
        mirror!(brg_stats { size, backend, submitted, completed, failed, cancelled, retried, timed_out, queued, in_flight, connections_open, connections_idle, connections_opened, tls_resumed, bytes_sent, bytes_received, results_waiting, waiting_rate, throttled, cooling_keys, breaker_open_keys, rejected, prompt_tokens, completion_tokens, cache_hits }),
        mirror!(brg_batch_options { size, flags, input_path, output_path, endpoint, api_key_env, headers, n_headers, reorder_window, prices_path, deadline_ms, max_retries, shard_index, shard_count, reserved0 }),
        mirror!(brg_batch_progress { size, reserved0, total, done, ok, failed, cached, invalid, skipped, in_flight, prompt_tokens, completion_tokens, cost_usd, elapsed_s }),
    ];
    let structs = j["structs"].as_object().expect("structs");
    let mine: Vec<&str> = mirrors.iter().map(|m| m.0).collect();
    for name in structs.keys() {
        assert!(mine.contains(&name.as_str()), "header struct {name} has no Rust mirror");
    }
    for (name, size, align, fields) in mirrors {
        let c = &structs[name];
        assert_eq!(size as u64, c["size"].as_u64().unwrap(), "{name} size");
        assert_eq!(align as u64, c["align"].as_u64().unwrap(), "{name} align");
        let cf = c["fields"].as_object().unwrap();
        let rf: BTreeMap<&str, (usize, usize)> = fields.iter().map(|f| (f.0, (f.1, f.2))).collect();
        for (fname, v) in cf {
            let (off, sz) = *rf.get(fname.as_str()).unwrap_or_else(|| panic!("{name}.{fname} missing in the mirror"));
            assert_eq!(off as u64, v["offset"].as_u64().unwrap(), "{name}.{fname} offset");
            assert_eq!(sz as u64, v["size"].as_u64().unwrap(), "{name}.{fname} size");
        }
        for f in rf.keys() {
            assert!(cf.contains_key(*f), "{name}.{f} is not in the header");
        }
    }
}

#[test]
fn version_matches_the_header() {
    let j = layout();
    let v = format!("{}.{}.{}", BRG_VERSION_MAJOR, BRG_VERSION_MINOR, BRG_VERSION_PATCH);
    assert_eq!(j["version"].as_str().unwrap(), v, "sys.rs mirrors another header version");
    assert_eq!(BRG_VERSION_HEX, (BRG_VERSION_MAJOR << 16) | (BRG_VERSION_MINOR << 8) | BRG_VERSION_PATCH);
}

#[test]
fn options_match_the_header_table() {
    let j = layout();
    let opts = j["options"].as_object().expect("options");
    for (name, o) in opts {
        let kind = match o["kind"].as_str().unwrap() {
            "INT" => OptKind::Int,
            "BOOL" => OptKind::Bool,
            "BACKEND" => OptKind::Backend,
            "STR" => OptKind::Str,
            k => panic!("{name}: unknown kind {k}"),
        };
        // Every header option is exposed (none is deliberately left out).
        let mine = sys::OPTIONS.iter().find(|x| x.0 == name).unwrap_or_else(|| panic!("option {name} not exposed"));
        assert_eq!(mine.1 as u64, o["number"].as_u64().unwrap(), "{name} number");
        assert_eq!(mine.2, kind, "{name} kind");
    }
    for (name, ..) in sys::OPTIONS {
        assert!(opts.contains_key(*name), "{name} is not in the header");
    }
}

#[test]
fn status_codes_match_the_header() {
    let j = layout();
    let st = j["status"].as_object().expect("status");
    let mine: &[(&str, i32)] = &[
        ("OK", BRG_OK), ("E_OK", BRG_E_OK), ("E_INVALID", BRG_E_INVALID), ("E_NOMEM", BRG_E_NOMEM),
        ("E_FULL", BRG_E_FULL), ("E_CLOSED", BRG_E_CLOSED), ("E_TIMEOUT", BRG_E_TIMEOUT),
        ("E_CANCELLED", BRG_E_CANCELLED), ("E_DNS", BRG_E_DNS), ("E_CONNECT", BRG_E_CONNECT),
        ("E_TLS", BRG_E_TLS), ("E_IO", BRG_E_IO), ("E_PROTOCOL", BRG_E_PROTOCOL), ("E_HTTP", BRG_E_HTTP),
        ("E_TOO_LARGE", BRG_E_TOO_LARGE), ("E_BACKEND", BRG_E_BACKEND), ("E_NOTFOUND", BRG_E_NOTFOUND),
        ("E_UNAVAILABLE", BRG_E_UNAVAILABLE),
    ];
    for (name, v) in st {
        let m = mine.iter().find(|x| x.0 == name).unwrap_or_else(|| panic!("status {name} unknown to the crate"));
        assert_eq!(m.1 as i64, v.as_i64().unwrap(), "{name}");
        // The error enum maps it to a variant of its own (not Other).
        if m.1 < 0 {
            let e = barrage::Error::from_code(m.1, String::new());
            assert_eq!(e.code(), m.1);
            assert!(!matches!(e, barrage::Error::Other { .. }), "{name} has no Error variant");
            assert_eq!(e.name(), format!("BRG_{name}"));
        }
    }
    assert_eq!(mine.len(), st.len(), "the crate knows statuses the header lacks");
}
