//! Property tests of scope evaluation.

use proptest::prelude::*;

use super::*;

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9/._-]{0,7}"
}

fn pattern_word() -> impl Strategy<Value = String> {
    prop_oneof![
        word(),
        Just("*".to_string()),
        Just("**".to_string()),
        "[a-z]{1,3}\\*".prop_map(|s| s),
    ]
}

fn pattern() -> impl Strategy<Value = CommandPattern> {
    prop::collection::vec(pattern_word(), 1..4).prop_map(|words| {
        CommandPattern::new(words.join(" ")).expect("generated patterns are valid")
    })
}

fn ssh_scope() -> impl Strategy<Value = SshScope> {
    (
        prop::collection::vec(pattern(), 0..5),
        prop::collection::vec(pattern(), 0..3),
        prop::collection::vec(prop::sample::select(Syntax::ALL.to_vec()), 0..3),
    )
        .prop_map(|(allow, deny, syntax)| SshScope {
            allow,
            deny,
            syntax,
            ..SshScope::default()
        })
}

fn command() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            word(),
            Just("a".into()),
            Just("|".into()),
            Just(";".into()),
            Just("'x y'".into())
        ],
        1..6,
    )
    .prop_map(|words| words.join(" "))
}

const METACHARACTERS: &[&str] = &[
    ";", "|", "&", "&&", "||", ">", "<", "$(id)", "`id`", "\n", "$HOME", "(", "*",
];

proptest! {
    #[test]
    fn adding_a_deny_never_widens_access(scope in ssh_scope(), extra in pattern(), cmd in command()) {
        let before = scope.check_command(cmd.as_bytes()).is_allowed();
        let mut stricter = scope.clone();
        stricter.deny.push(extra);
        let after = stricter.check_command(cmd.as_bytes()).is_allowed();
        prop_assert!(!after || before, "deny widened access for {cmd:?}");
    }

    #[test]
    fn shell_metacharacters_are_refused_by_default(
        words in prop::collection::vec(word(), 1..5),
        at in 0usize..5,
        meta in prop::sample::select(METACHARACTERS.to_vec()),
    ) {
        let mut parts = words.clone();
        parts.insert(at.min(parts.len()), meta.to_string());
        let cmd = parts.join(" ");
        let scope = SshScope { allow: vec![CommandPattern::new("**").unwrap()], ..SshScope::default() };
        prop_assert!(!scope.check_command(cmd.as_bytes()).is_allowed(), "{cmd:?} was allowed");
    }

    #[test]
    fn the_lexer_is_total(input in "\\PC{0,64}|[ -~\\n\\t]{0,64}") {
        // Any input gives a command line or an error, never a panic, and the same each time.
        prop_assert_eq!(lex(&input), lex(&input));
    }

    #[test]
    fn bytes_never_panic_the_evaluator(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let scope = SshScope { allow: vec![CommandPattern::new("**").unwrap()], ..SshScope::default() };
        let _ = scope.check_command(&bytes);
    }

    #[test]
    fn modbus_coverage_matches_brute_force(
        rules in prop::collection::vec((0u16..200, 0u16..50, any::<bool>()), 0..6),
        start in 0u16..260,
        count in 1u16..40,
    ) {
        let allow: Vec<ModbusRule> = rules.iter().map(|(first, len, write)| ModbusRule {
            access: if *write { Access::Write } else { Access::Read },
            table: Table::Holding,
            range: Span { first: *first, last: first + len },
            values: None,
        }).collect();
        let scope = ModbusScope { units: vec![1], functions: Some(vec![3]), allow: allow.clone() };
        let request = ModbusRequest {
            unit: 1,
            function: 3,
            read: Some(ModbusRead { table: Table::Holding, start, count }),
            write: None,
        };
        let oracle = (u32::from(start)..u32::from(start) + u32::from(count)).all(|a| {
            allow.iter().any(|r| r.access == Access::Read && u32::from(r.range.first) <= a && a <= u32::from(r.range.last))
        });
        prop_assert_eq!(scope.check(&request).is_allowed(), oracle);
    }
}

#[test]
fn scope_files_parse_and_evaluate() {
    let text = r#"
[ssh]
shell = false
sftp = "read"
allow = ["systemctl status plc-*", "journalctl -u plc-* **"]
deny = ["journalctl ** --vacuum-* **"]

[modbus]
units = [1]
allow = [
  { access = "read", table = "holding", range = "0-999" },
  { access = "write", table = "holding", range = "100-110", values = "0-500" },
]
"#;
    let scope = Scope::from_toml(text, "scope.toml").unwrap();
    assert_eq!(scope.protocols(), [Protocol::Ssh, Protocol::Modbus]);
    assert!(
        scope
            .check(&Operation::Exec(b"systemctl status plc-io"))
            .is_allowed()
    );
    assert!(!scope.check(&Operation::Shell).is_allowed());
    assert!(!scope.check(&Operation::Tcp { port: 80 }).is_allowed());
    let round = toml::to_string(&scope).unwrap();
    assert_eq!(Scope::from_toml(&round, "again").unwrap(), scope);
}

#[test]
fn malformed_scope_files_name_file_and_key() {
    for (text, expect) in [
        ("[ssh]\nallow = [\"ls; rm\"]", "scope.toml"),
        ("[ssh]\nshel = true", "shel"),
        ("[modbus]\nunits = []", "modbus.units"),
        ("[tcp]\nports = []", "tcp.ports"),
        ("", "allows nothing"),
        (
            "[modbus]\nunits = [1]\nallow = [{ access = \"read\", table = \"holding\", range = \"9-1\" }]",
            "range",
        ),
    ] {
        let err = Scope::from_toml(text, "scope.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{text:?}: {err}");
    }
}

#[test]
fn presets_materialize_per_asset() {
    let asset: crate::Asset = toml::from_str(
        r#"
name = "plc-7"
kind = "plc"
level = "1"
zone = "cell-a"
endpoints = [
  { protocol = "modbus", host = "10.0.1.7", port = 502, units = [1, 2] },
  { protocol = "ssh", host = "10.0.1.7", port = 22 },
]
"#,
    )
    .unwrap();
    let ro = Preset::ReadOnly
        .materialize(&asset, &[Protocol::Ssh, Protocol::Modbus])
        .unwrap();
    assert_eq!(ro.modbus.as_ref().unwrap().units, [1, 2]);
    assert!(
        ro.check(&Operation::Exec(b"systemctl status plc"))
            .is_allowed()
    );
    assert!(
        !ro.check(&Operation::Exec(b"systemctl restart plc"))
            .is_allowed()
    );
    assert!(
        !ro.check(&Operation::Exec(b"journalctl --vacuum-size=1M"))
            .is_allowed()
    );
    let write = ModbusRequest {
        unit: 1,
        function: 6,
        read: None,
        write: Some(ModbusWrite {
            table: Table::Holding,
            start: 1,
            values: WriteValues::Registers(&[1]),
        }),
    };
    assert!(!ro.check(&Operation::Modbus(&write)).is_allowed());
    let maint = Preset::Maintenance
        .materialize(&asset, &[Protocol::Ssh, Protocol::Modbus])
        .unwrap();
    assert!(maint.check(&Operation::Modbus(&write)).is_allowed());
    assert!(maint.check(&Operation::Shell).is_allowed());
    assert!(!maint.check(&Operation::Exec(b"rm -rf /")).is_allowed());
    assert!(
        Preset::ReadOnly
            .materialize(&asset, &[Protocol::Tcp])
            .is_err()
    );
    assert!("everything".parse::<Preset>().is_err());
}
