"""A vendor's Modbus tool for the end-to-end tests: pymodbus's client.

Usage: modbus_client.py PORT UNIT OPS, OPS a JSON list such as
[["read", 100, 2], ["write", 105, 42], ["write_many", 100, [1, 2]], ["read_input", 0, 1],
 ["write_coil", 3, true]]. Prints one JSON result per operation, in a list:
{"registers": [...]}, {"ok": true}, {"exception": CODE} or {"error": "..."}.
"""

import json
import sys

from pymodbus.client import ModbusTcpClient


def run(client: ModbusTcpClient, unit: int, op: list):
    kind, args = op[0], op[1:]
    calls = {
        "read": lambda a, n: client.read_holding_registers(a, count=n, slave=unit),
        "read_input": lambda a, n: client.read_input_registers(a, count=n, slave=unit),
        "write": lambda a, v: client.write_register(a, v, slave=unit),
        "write_many": lambda a, vs: client.write_registers(a, vs, slave=unit),
        "write_coil": lambda a, v: client.write_coil(a, v, slave=unit),
    }
    try:
        response = calls[kind](*args)
    except Exception as error:  # the tool's view: a connection error, a timeout
        return {"error": f"{type(error).__name__}: {error}"}
    if response.isError():
        code = getattr(response, "exception_code", None)
        return {"exception": code} if code is not None else {"error": str(response)}
    if hasattr(response, "registers") and kind.startswith("read"):
        return {"registers": list(response.registers)}
    return {"ok": True}


def main() -> None:
    port, unit, ops = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    # Generous: the gateway answers refusals itself, but a loaded CI machine can be slow.
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=15, retries=0)
    if not client.connect():
        print(json.dumps([{"error": "cannot connect"}] * len(ops)))
        return
    results = [run(client, unit, op) for op in ops]
    client.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
