//! The Modbus part of a scope: unit ids, function codes, address ranges and value bounds.
//!
//! The gateway's codec turns each request into a [`ModbusRequest`]; evaluation says whether it
//! may reach the PLC and, if not, which exception the gateway answers with.

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::decision::{Decision, DenyReason, Rule};
use crate::error::{PolicyError, Result};

/// The four Modbus data tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Read-write bits (FC 1, 5, 15).
    Coils,
    /// Read-only bits (FC 2).
    Discrete,
    /// Read-write registers (FC 3, 6, 16, 22, 23, 24).
    Holding,
    /// Read-only registers (FC 4).
    Input,
}

impl Table {
    /// The table's name in scope files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coils => "coils",
            Self::Discrete => "discrete inputs",
            Self::Holding => "holding registers",
            Self::Input => "input registers",
        }
    }
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read.
    Read,
    /// Write.
    Write,
}

/// An inclusive range of 16-bit numbers written `0-999` or `100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span {
    /// First number.
    pub first: u16,
    /// Last number (inclusive).
    pub last: u16,
}

impl Span {
    /// The span as a range.
    pub fn range(self) -> RangeInclusive<u16> {
        self.first..=self.last
    }

    /// Whether `n` lies in the span.
    pub fn contains(self, n: u16) -> bool {
        self.range().contains(&n)
    }
}

impl std::str::FromStr for Span {
    type Err = PolicyError;
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            PolicyError::invalid(
                "range",
                format!(
                    "`{}` is not a range: expected FIRST-LAST such as 0-999 (0 to 65535)",
                    text.chars().take(32).collect::<String>()
                ),
            )
        };
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        Ok(Self { first, last })
    }
}

impl TryFrom<String> for Span {
    type Error = PolicyError;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<Span> for String {
    fn from(value: Span) -> String {
        value.to_string()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One allowance: read or write a range of one table, optionally with value bounds for writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusRule {
    /// Read or write.
    pub access: Access,
    /// Which table.
    pub table: Table,
    /// Addresses (0-based protocol addresses).
    pub range: Span,
    /// Allowed register values for writes, e.g. `0-500`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Span>,
}

/// What may be done over Modbus/TCP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusScope {
    /// Unit ids that may be addressed.
    pub units: Vec<u8>,
    /// Function codes allowed; when absent, those implied by `allow` (reads and writes of the
    /// listed tables). Codes without addresses (diagnostics, device identification) must be
    /// listed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<u8>>,
    /// Address ranges that may be read or written.
    #[serde(default)]
    pub allow: Vec<ModbusRule>,
}

/// Values a request writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteValues<'a> {
    /// Register values (FC 6, 16, 23).
    Registers(&'a [u16]),
    /// Coil values (FC 5, 15); bounds do not apply.
    Coils(usize),
    /// A masked write (FC 22) whose result depends on the current value.
    Masked,
}

impl WriteValues<'_> {
    fn count(&self) -> usize {
        match self {
            Self::Registers(values) => values.len(),
            Self::Coils(count) => *count,
            Self::Masked => 1,
        }
    }
}

/// A read of `count` items from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModbusRead {
    /// Table.
    pub table: Table,
    /// First address.
    pub start: u16,
    /// Number of items.
    pub count: u16,
}

/// A write from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModbusWrite<'a> {
    /// Table.
    pub table: Table,
    /// First address.
    pub start: u16,
    /// The values.
    pub values: WriteValues<'a>,
}

/// A Modbus request as the gateway's codec decoded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModbusRequest<'a> {
    /// Unit id.
    pub unit: u8,
    /// Function code.
    pub function: u8,
    /// What it reads, if anything.
    pub read: Option<ModbusRead>,
    /// What it writes, if anything.
    pub write: Option<ModbusWrite<'a>>,
}

/// Function codes that read (table) or write (table).
fn implied_functions(rule: &ModbusRule) -> &'static [u8] {
    match (rule.access, rule.table) {
        (Access::Read, Table::Coils) => &[1],
        (Access::Read, Table::Discrete) => &[2],
        (Access::Read, Table::Holding) => &[3, 24],
        (Access::Read, Table::Input) => &[4],
        (Access::Write, Table::Coils) => &[5, 15],
        (Access::Write, Table::Holding) if rule.values.is_some() => &[6, 16, 23],
        (Access::Write, Table::Holding) => &[6, 16, 22, 23],
        (Access::Write, Table::Discrete | Table::Input) => &[],
    }
}

impl ModbusScope {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        if self.units.is_empty() {
            return Err(PolicyError::invalid(
                "modbus.units",
                "list the unit ids this grant may address, e.g. units = [1]",
            ));
        }
        if self.allow.len() > 256 {
            return Err(PolicyError::invalid("modbus.allow", "at most 256 rules"));
        }
        for (i, rule) in self.allow.iter().enumerate() {
            if rule.access == Access::Write && matches!(rule.table, Table::Discrete | Table::Input)
            {
                return Err(PolicyError::invalid(
                    format!("modbus.allow[{i}]"),
                    format!("{} are read-only in Modbus", rule.table.as_str()),
                ));
            }
            if rule.values.is_some()
                && !(rule.access == Access::Write && rule.table == Table::Holding)
            {
                return Err(PolicyError::invalid(
                    format!("modbus.allow[{i}].values"),
                    "value bounds apply to writes of holding registers only",
                ));
            }
        }
        if let Some(functions) = &self.functions
            && let Some(bad) = functions.iter().find(|f| **f == 0 || **f >= 128)
        {
            return Err(PolicyError::invalid(
                "modbus.functions",
                format!("{bad} is not a Modbus function code (1-127)"),
            ));
        }
        Ok(())
    }

    /// Checks one request. Unit first, then function, addresses, values: the gateway answers a
    /// denial with the matching exception (unit: 0x0A, function: 01, address: 02, value: 03).
    pub fn check(&self, request: &ModbusRequest<'_>) -> Decision {
        if !self.units.contains(&request.unit) {
            return Decision::deny(
                Rule::new("modbus.units", format!("{:?}", self.units)),
                DenyReason::ModbusUnit { unit: request.unit },
            );
        }
        let function_ok = match &self.functions {
            Some(listed) => listed.contains(&request.function),
            None => {
                self.allow
                    .iter()
                    .any(|rule| implied_functions(rule).contains(&request.function))
                    && (request.function != 23 || self.implies_both_holding())
            }
        };
        if !function_ok {
            let rule = match &self.functions {
                Some(listed) => Rule::new("modbus.functions", format!("{listed:?}")),
                None => Rule::new("modbus.allow", "implied function codes"),
            };
            return Decision::deny(
                rule,
                DenyReason::ModbusFunction {
                    function: request.function,
                },
            );
        }
        let mut decided = Rule::new("modbus.functions", request.function.to_string());
        if let Some(read) = request.read {
            match self.covering(
                Access::Read,
                read.table,
                read.start,
                usize::from(read.count),
            ) {
                Some(i) => decided = self.rule_ref(i),
                None => {
                    return Decision::deny(
                        Rule::default_deny(),
                        DenyReason::ModbusAddress {
                            table: read.table,
                            start: read.start,
                            count: read.count,
                            access: "read".into(),
                        },
                    );
                }
            }
        }
        if let Some(write) = request.write {
            let count = write.values.count();
            match self.covering(Access::Write, write.table, write.start, count) {
                Some(i) => decided = self.rule_ref(i),
                None => {
                    return Decision::deny(
                        Rule::default_deny(),
                        DenyReason::ModbusAddress {
                            table: write.table,
                            start: write.start,
                            count: u16::try_from(count).unwrap_or(u16::MAX),
                            access: "write".into(),
                        },
                    );
                }
            }
            if let Some(denial) = self.check_values(&write) {
                return denial;
            }
        }
        Decision::Allow { rule: decided }
    }

    fn implies_both_holding(&self) -> bool {
        let has = |access| {
            self.allow
                .iter()
                .any(|r| r.access == access && r.table == Table::Holding)
        };
        has(Access::Read) && has(Access::Write)
    }

    fn rule_ref(&self, i: usize) -> Rule {
        let text = self.allow.get(i).map_or_else(String::new, |r| {
            let access = if r.access == Access::Read {
                "read"
            } else {
                "write"
            };
            let bounds = r.values.map(|v| format!(" values {v}")).unwrap_or_default();
            format!("{access} {} {}{bounds}", r.table.as_str(), r.range)
        });
        Rule::new(format!("modbus.allow[{i}]"), text)
    }

    /// Index of the first rule used if `[start, start+count)` is covered by the union of the
    /// rules for `access` on `table`.
    fn covering(&self, access: Access, table: Table, start: u16, count: usize) -> Option<usize> {
        if count == 0 {
            return None;
        }
        let last = u32::from(start) + u32::try_from(count).ok()? - 1;
        if last > u32::from(u16::MAX) {
            return None;
        }
        let mut next = u32::from(start);
        let mut first_used = None;
        // Extend coverage until no rule extends it; rules are few (at most 256).
        loop {
            let extension = self.allow.iter().enumerate().find(|(_, r)| {
                r.access == access
                    && r.table == table
                    && u32::from(r.range.first) <= next
                    && u32::from(r.range.last) >= next
            });
            let (i, rule) = extension?;
            first_used.get_or_insert(i);
            if u32::from(rule.range.last) >= last {
                return first_used;
            }
            next = u32::from(rule.range.last) + 1;
        }
    }

    fn check_values(&self, write: &ModbusWrite<'_>) -> Option<Decision> {
        let bounded_rules = |address: u16| {
            self.allow.iter().enumerate().filter(move |(_, r)| {
                r.access == Access::Write && r.table == write.table && r.range.contains(address)
            })
        };
        let value_ok = |address: u16, value: Option<u16>| {
            bounded_rules(address).any(|(_, r)| match (r.values, value) {
                (None, _) => true,
                (Some(bounds), Some(v)) => bounds.contains(v),
                (Some(_), None) => false,
            })
        };
        match write.values {
            WriteValues::Coils(_) => None,
            WriteValues::Masked => (!value_ok(write.start, None)).then(|| {
                Decision::deny(
                    Rule::new("modbus.allow", "value bounds"),
                    DenyReason::ModbusValue {
                        address: write.start,
                        value: 0,
                    },
                )
            }),
            WriteValues::Registers(values) => {
                values
                    .iter()
                    .zip(write.start..)
                    .find_map(|(value, address)| {
                        (!value_ok(address, Some(*value))).then(|| {
                            let i = bounded_rules(address)
                                .map(|(i, _)| i)
                                .next()
                                .unwrap_or_default();
                            Decision::deny(
                                self.rule_ref(i),
                                DenyReason::ModbusValue {
                                    address,
                                    value: *value,
                                },
                            )
                        })
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(access: Access, table: Table, range: &str, values: Option<&str>) -> ModbusRule {
        ModbusRule {
            access,
            table,
            range: range.parse().unwrap(),
            values: values.map(|v| v.parse().unwrap()),
        }
    }

    fn plc7() -> ModbusScope {
        ModbusScope {
            units: vec![1],
            functions: None,
            allow: vec![
                rule(Access::Read, Table::Holding, "0-999", None),
                rule(Access::Write, Table::Holding, "100-110", Some("0-500")),
            ],
        }
    }

    fn read(unit: u8, function: u8, start: u16, count: u16) -> ModbusRequest<'static> {
        ModbusRequest {
            unit,
            function,
            read: Some(ModbusRead {
                table: Table::Holding,
                start,
                count,
            }),
            write: None,
        }
    }

    fn write(values: &[u16], start: u16) -> ModbusRequest<'_> {
        ModbusRequest {
            unit: 1,
            function: 16,
            read: None,
            write: Some(ModbusWrite {
                table: Table::Holding,
                start,
                values: WriteValues::Registers(values),
            }),
        }
    }

    #[test]
    fn reads_inside_the_range_pass() {
        let s = plc7();
        assert!(s.check(&read(1, 3, 0, 10)).is_allowed());
        assert!(s.check(&read(1, 3, 990, 10)).is_allowed());
        assert!(matches!(
            s.check(&read(1, 3, 990, 11)),
            Decision::Deny {
                reason: DenyReason::ModbusAddress { .. },
                ..
            }
        ));
        assert!(matches!(
            s.check(&read(2, 3, 0, 1)),
            Decision::Deny {
                reason: DenyReason::ModbusUnit { unit: 2 },
                ..
            }
        ));
        assert!(matches!(
            s.check(&read(1, 4, 0, 1)),
            Decision::Deny {
                reason: DenyReason::ModbusFunction { function: 4 },
                ..
            }
        ));
        assert!(!s.check(&read(1, 3, 65535, 2)).is_allowed());
        assert!(!s.check(&read(1, 3, 0, 0)).is_allowed());
    }

    #[test]
    fn writes_respect_range_and_bounds() {
        let s = plc7();
        assert!(s.check(&write(&[0, 500], 100)).is_allowed());
        assert!(matches!(
            s.check(&write(&[501], 105)),
            Decision::Deny {
                reason: DenyReason::ModbusValue {
                    address: 105,
                    value: 501
                },
                ..
            }
        ));
        assert!(matches!(
            s.check(&write(&[1, 2], 110)),
            Decision::Deny {
                reason: DenyReason::ModbusAddress { .. },
                ..
            }
        ));
        let masked = ModbusRequest {
            unit: 1,
            function: 22,
            read: None,
            write: Some(ModbusWrite {
                table: Table::Holding,
                start: 100,
                values: WriteValues::Masked,
            }),
        };
        assert!(
            !s.check(&masked).is_allowed(),
            "masked writes cannot be bounded"
        );
    }

    #[test]
    fn adjacent_rules_cover_together() {
        let mut s = plc7();
        s.allow
            .push(rule(Access::Read, Table::Holding, "1000-1999", None));
        assert!(s.check(&read(1, 3, 995, 10)).is_allowed());
    }

    #[test]
    fn explicit_functions_restrict_and_enable() {
        let mut s = plc7();
        s.functions = Some(vec![3, 43]);
        assert!(!s.check(&write(&[1], 100)).is_allowed());
        let ident = ModbusRequest {
            unit: 1,
            function: 43,
            read: None,
            write: None,
        };
        assert!(s.check(&ident).is_allowed());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut s = plc7();
        s.units.clear();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("modbus.units")
        );
        let mut s = plc7();
        s.allow.push(rule(Access::Write, Table::Input, "0", None));
        assert!(s.validate().unwrap_err().to_string().contains("read-only"));
        assert!("5-1".parse::<Span>().is_err());
        assert!("70000".parse::<Span>().is_err());
    }
}

crate::schema::string_schema!(
    Span,
    "Inclusive range FIRST-LAST of 16-bit numbers",
    "0-999"
);
