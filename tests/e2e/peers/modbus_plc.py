"""A Modbus/TCP PLC for the end-to-end tests: pymodbus's own server with a datastore.

Usage: modbus_plc.py PORT. Unit 1; holding and input registers 0-2099 start at their own
address (register 100 holds 100), coils and discrete inputs at 0.
"""

import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartTcpServer


def main() -> None:
    port = int(sys.argv[1])
    # pymodbus addresses blocks from 1 (zero_mode off): a block that starts at 1 puts protocol
    # address N at index N.
    registers = list(range(2100))
    unit = ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(1, registers),
        ir=ModbusSequentialDataBlock(1, registers),
        co=ModbusSequentialDataBlock(1, [False] * 2100),
        di=ModbusSequentialDataBlock(1, [False] * 2100),
    )
    StartTcpServer(
        context=ModbusServerContext(slaves={1: unit}, single=False),
        address=("127.0.0.1", port),
    )


if __name__ == "__main__":
    main()
