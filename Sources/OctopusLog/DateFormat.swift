/// A log4js (date-format) date pattern, compiled once: `yyyy MM dd hh mm ss SSS O`, everything else literal.
///
/// `hh` is the 24-hour hour, as in log4js. `yy` is the two-digit year. `O` is the zone offset, `Z` for UTC and
/// `+hh:mm` otherwise. The named formats `ISO8601` (the default), `ISO8601_WITH_TZ_OFFSET`, `ABSOLUTETIME`
/// (alias `ABSOLUTE`) and `DATETIME` (alias `DATE`) are accepted.
public struct DateFormat: Sendable, Hashable {
    /// Plain values, so rendering copies no references: literals are ranges of `literals`.
    enum Piece: Sendable, Hashable {
        case literal(start: Int, count: Int)
        case year4, year2, month, day, hour, minute, second, millisecond, offset
    }

    let pieces: [Piece]
    let literals: [UInt8]
    /// The text the format was compiled from (after resolving a named format).
    public let pattern: String

    public static let iso8601 = DateFormat("yyyy-MM-ddThh:mm:ss.SSS")
    public static let iso8601WithOffset = DateFormat("yyyy-MM-ddThh:mm:ss.SSSO")
    public static let absoluteTime = DateFormat("hh:mm:ss.SSS")
    public static let dateTime = DateFormat("dd MM yyyy hh:mm:ss.SSS")

    /// Compiles `format`, resolving the named formats.
    public init(_ format: String) {
        let resolved: String
        switch format {
        case "ISO8601": resolved = "yyyy-MM-ddThh:mm:ss.SSS"
        case "ISO8601_WITH_TZ_OFFSET": resolved = "yyyy-MM-ddThh:mm:ss.SSSO"
        case "ABSOLUTETIME", "ABSOLUTE": resolved = "hh:mm:ss.SSS"
        case "DATETIME", "DATE": resolved = "dd MM yyyy hh:mm:ss.SSS"
        default: resolved = format
        }
        self.pattern = resolved
        var pieces: [Piece] = []
        var literals: [UInt8] = []
        var literalStart = 0
        let chars = Array(resolved.utf8)
        var i = 0
        func run(_ c: UInt8) -> Int {
            var n = 0
            while i + n < chars.count, chars[i + n] == c { n += 1 }
            return n
        }
        while i < chars.count {
            let c = chars[i]
            var piece: Piece?
            var width = 0
            switch c {
            case UInt8(ascii: "y"):
                width = min(run(c), 4)
                piece = width == 4 ? .year4 : .year2
            case UInt8(ascii: "M") where run(c) >= 2: (piece, width) = (.month, 2)
            case UInt8(ascii: "d") where run(c) >= 2: (piece, width) = (.day, 2)
            case UInt8(ascii: "h") where run(c) >= 2: (piece, width) = (.hour, 2)
            case UInt8(ascii: "m") where run(c) >= 2: (piece, width) = (.minute, 2)
            case UInt8(ascii: "s") where run(c) >= 2: (piece, width) = (.second, 2)
            case UInt8(ascii: "S") where run(c) >= 3: (piece, width) = (.millisecond, 3)
            case UInt8(ascii: "O"): (piece, width) = (.offset, 1)
            default: break
            }
            if let piece {
                if literals.count > literalStart {
                    pieces.append(.literal(start: literalStart, count: literals.count - literalStart))
                    literalStart = literals.count
                }
                pieces.append(piece)
                i += width
            } else {
                literals.append(c)
                i += 1
            }
        }
        if literals.count > literalStart { pieces.append(.literal(start: literalStart, count: literals.count - literalStart)) }
        self.pieces = pieces
        self.literals = literals
    }

    func render(_ t: CivilTime, into out: inout LogBuffer) {
        literals.withUnsafeBufferPointer { literals in
            for piece in pieces {
                render(piece, t, literals, into: &out)
            }
        }
    }

    @inline(__always)
    private func render(_ piece: Piece, _ t: CivilTime, _ literals: UnsafeBufferPointer<UInt8>, into out: inout LogBuffer) {
            switch piece {
            case .literal(let start, let count): out.append(UnsafeBufferPointer(rebasing: literals[start..<(start + count)]))
            case .year4: out.appendDecimal(t.year, width: 4)
            case .year2: out.appendDecimal(t.year % 100, width: 2)
            case .month: out.appendDecimal(t.month, width: 2)
            case .day: out.appendDecimal(t.day, width: 2)
            case .hour: out.appendDecimal(t.hour, width: 2)
            case .minute: out.appendDecimal(t.minute, width: 2)
            case .second: out.appendDecimal(t.second, width: 2)
            case .millisecond: out.appendDecimal(t.millisecond, width: 3)
            case .offset: Self.appendOffset(t.offsetSeconds, into: &out)
            }
    }

    static func appendOffset(_ seconds: Int, into out: inout LogBuffer) {
        if seconds == 0 {
            out.append(UInt8(ascii: "Z"))
            return
        }
        out.append(seconds < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        let minutes = abs(seconds) / 60
        out.appendDecimal(minutes / 60, width: 2)
        out.append(UInt8(ascii: ":"))
        out.appendDecimal(minutes % 60, width: 2)
    }
}
