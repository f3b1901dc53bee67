//! Exec commands and console lines come from the vendor's SSH client: any bytes must give a
//! decision, never a panic, and the lexer must agree with itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otgate_policy::scope::{CommandPattern, SshScope, Syntax, lex};

fuzz_target!(|data: &[u8]| {
    let strict = SshScope {
        allow: [
            "systemctl status plc-*",
            "journalctl -u plc-* **",
            "cat /var/log/*",
            "ls **",
        ]
        .iter()
        .filter_map(|p| CommandPattern::new(*p).ok())
        .collect(),
        deny: ["rm **"]
            .iter()
            .filter_map(|p| CommandPattern::new(*p).ok())
            .collect(),
        ..SshScope::default()
    };
    let decision = strict.check_command(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let line = lex(text);
        // Anything with shell syntax is refused by a scope that allows none.
        if let Ok(line) = &line
            && line.syntax.iter().next().is_some()
        {
            assert!(!decision.is_allowed(), "syntax slipped through: {text:?}");
        }
        assert_eq!(line, lex(text));
        // Patterns from the same bytes parse or are refused, never panic.
        let _ = CommandPattern::new(text);
    }
    let permissive = SshScope {
        allow: CommandPattern::new("**").into_iter().collect(),
        syntax: Syntax::ALL.to_vec(),
        ..SshScope::default()
    };
    let _ = permissive.check_command(data);
});
