"""An Eastron SDM630 served by a third-party Modbus stack (python3-pymodbus 3.0).

Run with Debian's /usr/bin/python3. Serves input registers with SDM630 float32
values (high word first) on 127.0.0.1 at a free port, writes the port to
--port-file once listening, and serves until killed.
"""
import argparse
import asyncio
import struct

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server.async_io import ModbusTcpServer

# address -> value, the SDM630 registers the test checks.
VALUES = {
    0x0000: 229.5, 0x0002: 230.25, 0x0004: 231.0,   # V
    0x0006: 12.5, 0x0008: 7.25, 0x000A: 0.5,        # A
    0x000C: 2868.75, 0x000E: 1669.3125, 0x0010: 115.5,  # W
    0x0034: 4653.5625,                              # total W
    0x0046: 49.98,                                  # Hz
    0x0048: 12345.5, 0x004A: 6.25,                  # import / export kWh
    0x0156: 12351.75,                               # total kWh
}


def registers():
    regs = [0] * 0x200
    for address, value in VALUES.items():
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        regs[address], regs[address + 1] = high, low
    return regs


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--unit", type=int, default=1)
    args = parser.parse_args()
    slave = ModbusSlaveContext(ir=ModbusSequentialDataBlock(0, registers()), zero_mode=True)
    context = ModbusServerContext(slaves={args.unit: slave}, single=False)
    server = ModbusTcpServer(context, address=("127.0.0.1", 0))
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    port = server.server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    await task


asyncio.run(main())
