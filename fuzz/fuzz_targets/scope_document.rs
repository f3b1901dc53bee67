//! Scope and inventory documents arrive as files and API bodies: parse, validate, and when
//! they are valid, round-trip and evaluate, never panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otgate_policy::scope::{ModbusRead, ModbusRequest, Table};
use otgate_policy::{Inventory, Operation, Scope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scope) = Scope::from_toml(text, "fuzz") {
        let again = toml::to_string(&scope)
            .ok()
            .and_then(|t| Scope::from_toml(&t, "again").ok());
        assert_eq!(again.as_ref(), Some(&scope), "a valid scope round-trips");
        let read = ModbusRequest {
            unit: 1,
            function: 3,
            read: Some(ModbusRead {
                table: Table::Holding,
                start: 100,
                count: 10,
            }),
            write: None,
        };
        let _ = scope.check(&Operation::Modbus(&read));
        let _ = scope.check(&Operation::Exec(b"ls -l /var/log"));
        let _ = scope.check(&Operation::Tcp { port: 502 });
    }
    let _ = Inventory::from_toml(text, "fuzz");
    if let Ok(scope) = serde_json::from_str::<Scope>(text) {
        let _ = scope.validate();
    }
});
