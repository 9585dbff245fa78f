import Logging

/// One JSON object per line:
/// `{"time":"2026-11-21T12:00:00.000+00:00","level":"INFO","category":"db.pool","message":"…","metadata":{…},`
/// `"pid":1,"hostname":"h","file":"App/main.swift","line":3,"function":"run()"}`, with `"error"` after the
/// metadata when the event carries one.
///
/// Every string is escaped for JSON: quotes, backslashes, all control characters, U+2028 and U+2029. Swift
/// strings are valid UTF-8 (invalid input bytes were already replaced by U+FFFD when the string was made), so
/// the output is always valid UTF-8 JSON.
public struct JSONLayout: LogLayout {
    let timestamp: TimestampRenderer
    let pidBytes: [UInt8]
    let hostnameJSON: [UInt8]

    public init(timeZone: LogTimeZone = .local, environment: LayoutEnvironment = .current) {
        self.timestamp = TimestampRenderer(format: DateFormat("yyyy-MM-ddThh:mm:ss.SSS"), timeZone: timeZone)
        self.pidBytes = Array(String(environment.pid).utf8)
        var host = LogBuffer()
        Self.appendString(environment.hostname, into: &host)
        self.hostnameJSON = Array(host.bytes())
    }

    public func render(_ record: borrowing LogRecord, into out: inout LogBuffer) {
        out.appendUTF8("{\"time\":\"")
        timestamp.render(record.timestamp, into: &out)
        // ISO-8601 with an explicit offset, `+00:00` for UTC (not `Z`), so every line has the same shape.
        let offset = timestamp.offsets.offset(at: record.timestamp.seconds)
        out.append(offset < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        out.appendDecimal(abs(offset) / 3600, width: 2)
        out.append(UInt8(ascii: ":"))
        out.appendDecimal(abs(offset) % 3600 / 60, width: 2)
        out.appendUTF8("\",\"level\":")
        Self.appendString(record.level.name, into: &out)
        out.appendUTF8(",\"category\":")
        Self.appendString(record.category, into: &out)
        out.appendUTF8(",\"message\":")
        Self.appendString(record.message, into: &out)
        out.appendUTF8(",\"metadata\":")
        Self.appendMetadata(record.metadata, into: &out)
        if let error = record.error {
            out.appendUTF8(",\"error\":")
            Self.appendString(String(describing: error), into: &out)
        }
        out.appendUTF8(",\"pid\":")
        out.append(pidBytes)
        out.appendUTF8(",\"hostname\":")
        out.append(hostnameJSON)
        out.appendUTF8(",\"file\":")
        Self.appendString(record.file, into: &out)
        out.appendUTF8(",\"line\":")
        out.appendDecimal(Int(record.line))
        out.appendUTF8(",\"function\":")
        Self.appendString(record.function, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func appendMetadata(_ metadata: Logger.Metadata, into out: inout LogBuffer) {
        out.append(UInt8(ascii: "{"))
        var first = true
        forEachInKeyOrder(metadata) { key, value in
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            appendString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            appendValue(value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func appendValue(_ value: Logger.MetadataValue, into out: inout LogBuffer) {
        switch value {
        case .string(let s): appendString(s, into: &out)
        case .stringConvertible(let c): appendString(c.description, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendValue(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary): appendMetadata(dictionary, into: &out)
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Whether none of the eight bytes of `word` is below 0x20, `"` (0x22), `\` (0x5C) or 0x7F and above (a byte
    /// that may need escaping, or begin U+2028/U+2029). Exact for "none"; a word with such a byte is looked at byte
    /// by byte.
    @inline(__always)
    static func isPlain(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        let below0x20 = (word &- ones &* 0x20) & ~word & highs != 0
        let atLeast0x7F = (word | (word &+ ones)) & highs != 0
        return !(below0x20 || atLeast0x7F || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5C)))
    }

    /// `text` as a JSON string literal.
    static func appendString(_ text: String, into out: inout LogBuffer) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            var i = 0
            while i < bytes.count {
                // Most bytes need nothing: pass over them eight at a time while none of the eight is a control
                // character, `"`, `\` or at least 0x7F, then one at a time; they are copied later as one run.
                while i + 8 <= bytes.count, Self.isPlain(UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self)) {
                    i += 8
                }
                guard i < bytes.count else { break }
                let b = bytes[i]
                if b >= 0x20 && b != 0x22 && b != 0x5C && b != 0x7F && b != 0xE2 {
                    i += 1
                    continue
                }
                var escape: (UInt8, UInt8)?  // a two-byte escape, or (0, code) for \u00XX
                if b == UInt8(ascii: "\"") {
                    escape = (UInt8(ascii: "\\"), UInt8(ascii: "\""))
                } else if b == UInt8(ascii: "\\") {
                    escape = (UInt8(ascii: "\\"), UInt8(ascii: "\\"))
                } else if b < 0x20 || b == 0x7F {
                    switch b {
                    case 0x0A: escape = (UInt8(ascii: "\\"), UInt8(ascii: "n"))
                    case 0x0D: escape = (UInt8(ascii: "\\"), UInt8(ascii: "r"))
                    case 0x09: escape = (UInt8(ascii: "\\"), UInt8(ascii: "t"))
                    case 0x08: escape = (UInt8(ascii: "\\"), UInt8(ascii: "b"))
                    case 0x0C: escape = (UInt8(ascii: "\\"), UInt8(ascii: "f"))
                    default: escape = (0, b)
                    }
                } else if b == 0xE2, i + 2 < bytes.count, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9 {
                    // U+2028 / U+2029: legal JSON, but they end lines in JavaScript.
                    out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                    out.appendUTF8(bytes[i + 2] == 0xA8 ? "\\u2028" : "\\u2029")
                    i += 3
                    runStart = i
                    continue
                }
                if let escape {
                    out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                    if escape.0 == 0 {
                        out.append([UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                        out.append(hex[Int(escape.1 >> 4)])
                        out.append(hex[Int(escape.1 & 0xF)])
                    } else {
                        out.append(escape.0)
                        out.append(escape.1)
                    }
                    runStart = i + 1
                }
                i += 1
            }
            out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }
}
