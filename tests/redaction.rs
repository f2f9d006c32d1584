//! Secrets in real build output never reach `follow`'s output, text or JSON, and nothing from the
//! network reaches the terminal raw: the release binary against the simulator.

mod support;

use shiplog::demo::{DeploymentSpec, Fault, SimEvent, SimulatorHandle, SimulatorOptions};
use shiplog::printable;

use support::bin::{run, shiplog};

/// (line as the build prints it, secret that must not survive).
const LEAKS: &[(&str, &str)] = &[
    (
        "\u{1b}[33mAKIALALEMEL33243OLIB\u{1b}[0m",
        "AKIALALEMEL33243OLIB",
    ),
    (
        "key \u{1b}[1msk_live_VdD53X83RZJzzzzgEOzdmenC",
        "VdD53X83RZJzzzzgEOzdmenC",
    ),
    (
        "\u{1b}[32mvcp_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghij",
        "aBcDeFgHiJkLmNoPqRsT1234567890",
    ),
    ("API_KEY \u{1b}[22m=hunter2hunter2", "hunter2hunter2"),
    ("AKIA\u{7}LALEMEL33243OLIB", "LALEMEL33243OLIB"),
    (
        "OPENAI_KEY sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        "AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    ),
    (
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345-_xyz",
        "AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    ),
    (
        "maps AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    ),
    (
        "git push https://glpat-Ab3dEf6hIj9kLm2nOp5q@gitlab.com/acme/web.git",
        "Ab3dEf6hIj9kLm2nOp5q",
    ),
    (
        "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",
        "TwL2iGABf9DHoTf",
    ),
    (
        "sntrys_eyJpYXQiOjE2ODczMzY1NDMuNjk4NjI0LCJ1cmwiOm51bGx9",
        "eyJpYXQiOjE2ODczMzY1NDMuNjk4NjI0",
    ),
    (
        "blob?sv=2022-11-02&sig=abc%2Fdef%3D&se=2026",
        "abc%2Fdef%3D",
    ),
    (
        r#"{"auths":{"ghcr.io":{"auth":"dXNlcjpodW50ZXIy"}}}"#,
        "dXNlcjpodW50ZXIy",
    ),
    ("curl -u admin:s3cretPass https://example.com", "s3cretPass"),
    ("psql --password Tr0ub4dor3 -h db", "Tr0ub4dor3"),
    ("mysql -uroot -pC0rrectHorse -h db", "C0rrectHorse"),
    (
        "deploy --token Xy7kP2mQ9rT4vW1zA8bC3dE5",
        "Xy7kP2mQ9rT4vW1zA8bC3dE5",
    ),
    (
        r#"{"type":"service_account","private_key_id":"1a2b3c4d5e6f"}"#,
        "1a2b3c4d5e6f",
    ),
    (
        "postgres://admin:s3cr/et#Pass@db.internal:5432/app",
        "s3cr/et#Pass",
    ),
    (
        "https://0123456789abcdef0123456789abcdef:x-oauth-basic@github.com/a/b",
        "0123456789abcdef0123456789abcdef",
    ),
    (
        r#"body {\"password\":\"hunter2hunter2\"}"#,
        "hunter2hunter2",
    ),
    (
        r#"headers {"Authorization":["Bearer abcdef123456"]}"#,
        "abcdef123456",
    ),
    (
        r#"{\"url\":\"https:\/\/hooks.slack.com\/services\/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\"}"#,
        "bJtrpFi1fO1JMCcwLx8uZyAg",
    ),
    (
        "Set-Cookie: __session=s3ss10nV4lue; Path=/; HttpOnly",
        "s3ss10nV4lue",
    ),
];

/// A private key printed a line per event, as `cat key.pem` in a build does.
const KEY_LINES: &[&str] = &[
    "-----BEGIN RSA PRIVATE KEY-----",
    "MIIEowIBAAKCAQEA7yn3bRHQ5FHMQ1Gp8Ye0Yb3xWqzNc9pVJ2dKBfzQm9t4Lr8k",
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz",
    "-----END RSA PRIVATE KEY-----",
];

fn leaking_build() -> DeploymentSpec {
    let mut events: Vec<SimEvent> = LEAKS
        .iter()
        .map(|(line, _)| SimEvent::stdout(5, *line))
        .collect();
    events.extend(KEY_LINES.iter().map(|line| SimEvent::stdout(5, *line)));
    events.push(SimEvent::stdout(5, "after the key: Build Completed"));
    // An event type that writes the clipboard and clears the screen, and a bidi override.
    events.push(SimEvent {
        after_ms: 5,
        kind: "stdout\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J".to_owned(),
        text: "invoice for \u{202e}exe.txt".to_owned(),
        ..SimEvent::default()
    });
    DeploymentSpec {
        project: "storefront".to_owned(),
        events,
        // Half a surrogate pair, which JSON allows: shown with `�`, not dropped.
        faults: vec![Fault::LoneSurrogateBefore { event: 2 }],
        ..DeploymentSpec::default()
    }
}

async fn follow(json: bool) -> String {
    let sim = SimulatorHandle::start(SimulatorOptions {
        speed: 40.0,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let id = sim.add_deployment(leaking_build());
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        if json {
            c.arg("--json");
        }
        c
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

fn assert_nothing_leaks(shown: &str) {
    for (line, secret) in LEAKS {
        assert!(!shown.contains(secret), "{secret:?} from {line:?} leaked");
    }
    for line in &KEY_LINES[1..3] {
        assert!(
            !shown.contains(line),
            "a line of the private key leaked: {line}"
        );
    }
    assert!(
        shown.contains("after the key: Build Completed"),
        "the key hid what followed it"
    );
}

#[tokio::test]
async fn no_secret_reaches_text_output_and_nothing_drives_the_terminal() {
    let stdout = follow(false).await;
    assert_nothing_leaks(&stdout);
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!stdout.contains(raw), "{raw:?} printed raw:\n{stdout}");
    }
    assert!(stdout.contains("invoice for \u{fffd}exe.txt"), "{stdout}");
    assert!(stdout.contains("half \u{fffd} a pair"), "{stdout}");
    // Only the secret goes: the cookie's name and attributes stay.
    assert!(
        stdout.contains("Set-Cookie: __session=[REDACTED]; Path=/; HttpOnly"),
        "{stdout}"
    );
}

#[tokio::test]
async fn no_secret_reaches_json_output_and_every_field_is_clean() {
    let stdout = follow(true).await;
    let mut seen = String::new();
    for line in stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        let event = entry["event"].as_str().unwrap_or_default();
        assert!(!event.contains(|c: char| c.is_control()), "{event:?}");
        // What a consumer would show of the message, escapes and all.
        seen.push_str(&printable::for_matching(
            entry["message"].as_str().unwrap_or_default(),
        ));
        seen.push('\n');
    }
    assert_nothing_leaks(&seen);
    assert!(
        !stdout.contains("]52;"),
        "the clipboard escape survived in JSON"
    );
}
