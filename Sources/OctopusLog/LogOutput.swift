/// Appending text to the byte buffer a layout renders into, without going through `String`.
extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendUTF8(_ text: String) {
        var text = text
        text.withUTF8 { self.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendUTF8(_ text: Substring) {
        var text = text
        text.withUTF8 { self.append(contentsOf: $0) }
    }

    /// `value` in decimal, zero-padded to `width` digits (more digits when it needs them).
    @inline(__always)
    mutating func appendDecimal(_ value: Int, width: Int = 1) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            appendDecimal(-value, width: width)
            return
        }
        if width == 2 && value < 100 {
            append(UInt8(truncatingIfNeeded: 48 + value / 10))
            append(UInt8(truncatingIfNeeded: 48 + value % 10))
            return
        }
        var divisor = 1
        var digits = 1
        while divisor <= value / 10 {
            divisor *= 10
            digits += 1
        }
        var padding = width - digits
        while padding > 0 {
            append(UInt8(ascii: "0"))
            padding -= 1
        }
        while divisor > 0 {
            append(UInt8(truncatingIfNeeded: 48 + value / divisor % 10))
            divisor /= 10
        }
    }
}
