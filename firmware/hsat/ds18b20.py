"""DS18B20 scratchpad decoding and checks, without any bus access (pure, testable).

Source: Maxim Integrated / Analog Devices DS18B20 datasheet (19-7487 Rev 6), "Memory" and
"Configuration Register": the 9-byte scratchpad is temp LSB, temp MSB, TH, TL, config,
reserved (FFh), reserved, reserved (10h), CRC; the config register is 0 R1 R0 1 1 1 1 1;
the temperature register powers up at +85 °C (0550h); the sensor measures -55..+125 °C.
CRC: Maxim Application Note 27, polynomial X^8 + X^5 + X^4 + 1 (reflected 0x8C), over the
first 8 bytes, must equal byte 8.
"""

POWER_ON_RAW = 0x0550  # +85.0 °C: the register before the first conversion completes
MIN_C = -55.0
MAX_C = 125.0
FAMILIES = (0x28, 0x22)  # DS18B20, DS1822: same scratchpad layout


class SensorFault(Exception):
    """A reading that must not be used. `code` is stable, the message is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def crc8(data: bytes) -> int:
    """Dallas/Maxim 1-Wire CRC-8 (AN27)."""
    crc = 0
    for byte in data:
        b = byte
        for _ in range(8):
            mix = (crc ^ b) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            b >>= 1
    return crc


def parse_rom(text: str) -> bytes:
    """A ROM code written as 16 hex digits (as `scan()` prints it) -> 8 bytes; checks it."""
    if not isinstance(text, str):
        raise ValueError("must be a string of 16 hex digits")
    clean = text.replace(":", "").replace("-", "").replace(" ", "").lower()
    if len(clean) != 16:
        raise ValueError("must be 16 hex digits (8 bytes), got {}".format(len(clean)))
    try:
        rom = bytes.fromhex(clean)
    except ValueError:
        raise ValueError("is not hexadecimal: {!r}".format(text))
    if rom[0] not in FAMILIES:
        raise ValueError("family code 0x{:02x} is not a DS18B20 (0x28) or DS1822 (0x22)"
                         .format(rom[0]))
    if crc8(rom[:7]) != rom[7]:
        raise ValueError("CRC of the ROM code does not match (a typo?)")
    return rom


def rom_hex(rom: bytes) -> str:
    return "".join("{:02x}".format(b) for b in rom)


def decode_scratchpad(buf: bytes) -> "tuple[int, float]":
    """(raw register, °C) from a scratchpad read; raises SensorFault with the reason."""
    if len(buf) != 9:
        raise SensorFault("short_read", "scratchpad has {} bytes, expected 9".format(len(buf)))
    if all(b == 0xFF for b in buf):
        raise SensorFault("disconnected", "bus reads all ones: sensor disconnected")
    if all(b == 0x00 for b in buf):
        # CRC-8 of all zeros is zero, so this would pass the CRC check as 0.0 °C.
        raise SensorFault("shorted", "bus reads all zeros: data line shorted to ground")
    if crc8(buf[:8]) != buf[8]:
        raise SensorFault("crc", "CRC error in scratchpad (noise or a long cable)")
    config = buf[4]
    if config & 0x9F != 0x1F:
        raise SensorFault("bad_config", "configuration register 0x{:02x} is not 0RR11111"
                          .format(config))
    raw = buf[1] << 8 | buf[0]
    # Undefined low bits at lower resolutions (datasheet Table 1 note).
    resolution_bits = 9 + ((config >> 5) & 0x03)
    raw &= ~((1 << (12 - resolution_bits)) - 1) & 0xFFFF
    value = raw - 0x10000 if raw & 0x8000 else raw
    temp_c = value / 16
    if temp_c < MIN_C or temp_c > MAX_C:
        raise SensorFault("range", "{} °C is outside the sensor's -55..125 °C".format(temp_c))
    return raw, temp_c
