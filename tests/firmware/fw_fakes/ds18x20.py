"""Fake `ds18x20`: the driver's contract on top of the fake bus (own code, same protocol:
Skip ROM + Convert T; Match ROM + Read Scratchpad; CRC failure -> Exception("CRC error"))."""


class DS18X20:
    def __init__(self, onewire):
        self.ow = onewire
        self.buf = bytearray(9)

    def scan(self):
        return [rom for rom in self.ow.scan() if rom[0] in (0x10, 0x22, 0x28)]

    def convert_temp(self):
        self.ow.reset(True)
        self.ow.writebyte(self.ow.SKIP_ROM)
        self.ow.writebyte(0x44)

    def read_scratch(self, rom):
        self.ow.reset(True)
        self.ow.select_rom(rom)
        self.ow.writebyte(0xBE)
        self.ow.readinto(self.buf)
        if self.ow.crc8(self.buf):
            raise Exception("CRC error")
        return self.buf

    def read_temp(self, rom):
        buf = self.read_scratch(rom)
        t = buf[1] << 8 | buf[0]
        if t & 0x8000:
            t -= 0x10000
        return t / 16
