//! Offline evaluation with the same code the live detector runs: public masquerade data
//! ([`sea`]), event streams in JSON lines ([`events`]) and Modbus/TCP captures ([`pcap`]),
//! reported as hit rate, false-alarm rate, ROC points and AUC ([`roc`]).

pub mod capture;
pub mod events;
pub mod pcap;
pub mod roc;
pub mod sea;
