import Foundation
import OctopusConfig

/// What a log line says, as far as its layout can be read back.
public struct ParsedLogLine: Sendable, Hashable {
    public var time: LogTimestamp?
    public var level: String?
    public var category: String?
    public var message: String?
}

/// Reads lines written by a layout back into their time, level, category and message: pattern layouts (with `%d`,
/// `%p`, `%c`, `%m` where present), `basic`, `colored` and `json`. `messagePassThrough` lines cannot be read back.
public struct LogLineParser: Sendable {
    private enum Kind: Sendable {
        case json
        case regex(NSRegularExpression, Groups)
        case none
    }

    /// Capture group numbers of each field in the regular expression (0: absent).
    private struct Groups: Sendable {
        var year = 0, year2 = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millisecond = 0, offset = 0
        var level = 0, category = 0, message = 0
    }

    private let kind: Kind
    private let zone: ZoneOffsetCache
    /// What the layout prints that a filter can use.
    public let hasTime: Bool
    public let hasLevel: Bool
    public let hasCategory: Bool

    /// A parser for lines of `layout`; `nil` when the layout cannot be read back.
    public init?(layout: LayoutConfiguration) {
        switch layout {
        case .json(let timeZone):
            self.init(kind: .json, zone: timeZone, time: true, level: true, category: true)
        case .basic(let timeZone), .colored(let timeZone):
            self.init(pattern: "[%d] [%p] %c - %m", timeZone: timeZone)
        case .pattern(let pattern, _, let timeZone):
            self.init(pattern: pattern, timeZone: timeZone)
        case .messagePassThrough, .custom:
            return nil
        }
    }

    private init(kind: Kind, zone: LogTimeZone, time: Bool, level: Bool, category: Bool) {
        self.kind = kind
        self.zone = ZoneOffsetCache(zone)
        self.hasTime = time
        self.hasLevel = level
        self.hasCategory = category
    }

    /// A parser for a pattern layout's lines; `nil` when the pattern has none of `%d`, `%p`, `%c`.
    public init?(pattern: String, timeZone: LogTimeZone = .local) {
        guard let compiled = try? PatternLayout.compile(pattern, timeZone: timeZone) else { return nil }
        var regex = "^"
        var groups = Groups()
        var count = 0
        func capture(_ body: String) -> Int {
            regex += "(" + body + ")"
            count += 1
            return count
        }
        var trailing = false  // a newline token ends the pattern's first line
        for piece in compiled.pieces where !trailing {
            switch piece {
            case .literal(let start, let length):
                let text = String(decoding: compiled.literals[start..<(start + length)], as: UTF8.self)
                regex += NSRegularExpression.escapedPattern(for: text)
            case .field(let field, let padding, let truncation):
                if padding != 0 { regex += " *" }
                switch field {
                case .date(let index):
                    for datePiece in compiled.renderers[index].format.pieces {
                        switch datePiece {
                        case .literal(let start, let length):
                            let format = compiled.renderers[index].format
                            regex += NSRegularExpression.escapedPattern(
                                for: String(decoding: format.literals[start..<(start + length)], as: UTF8.self))
                        case .year4: groups.year = capture("\\d{4}")
                        case .year2: groups.year2 = capture("\\d{2}")
                        case .month: groups.month = capture("\\d{2}")
                        case .day: groups.day = capture("\\d{2}")
                        case .hour: groups.hour = capture("\\d{2}")
                        case .minute: groups.minute = capture("\\d{2}")
                        case .second: groups.second = capture("\\d{2}")
                        case .millisecond: groups.millisecond = capture("\\d{3}")
                        case .offset: groups.offset = capture("Z|[+-]\\d{2}:\\d{2}")
                        }
                    }
                case .level: groups.level = capture(truncation != 0 ? "\\S*" : "[A-Za-z][A-Za-z0-9_]*")
                case .category: groups.category = capture("\\S+")
                case .message: groups.message = capture(".*")
                case .newline: trailing = true
                case .colourStart, .colourEnd, .nothing: break
                case .pid, .line: regex += "\\d*"
                default: regex += ".*?"
                }
                if padding != 0 { regex += " *" }
            }
        }
        regex += trailing ? "" : "$"
        guard groups.year + groups.year2 + groups.level + groups.category > 0,
            let expression = try? NSRegularExpression(pattern: regex)
        else { return nil }
        self.init(
            kind: .regex(expression, groups), zone: timeZone,
            time: groups.year + groups.year2 > 0, level: groups.level > 0, category: groups.category > 0)
    }

    /// The layouts `tail` tries, in order, on a log whose configuration it does not know.
    public static let guesses: [LogLineParser] = [
        LogLineParser(layout: .json(timeZone: .local)),
        LogLineParser(pattern: "[%d] [%p] %c - %m"),
        LogLineParser(pattern: "%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m"),
        LogLineParser(pattern: "%d{ISO8601_WITH_TZ_OFFSET} [%p] %c - %m"),
    ].compactMap { $0 }

    /// The first of ``guesses`` that reads `line`.
    public static func guess(from line: String) -> LogLineParser? {
        guesses.first { $0.parse(line) != nil }
    }

    /// The fields of `line`, or `nil` when it is not a line of this layout (a continuation of a multi-line
    /// message, say).
    public func parse(_ line: String) -> ParsedLogLine? {
        let text = Self.stripColours(line)
        switch kind {
        case .none:
            return nil
        case .json:
            guard text.hasPrefix("{"), let data = text.data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return nil }
            return ParsedLogLine(
                time: (object["time"] as? String).flatMap(Self.parseTime),
                level: object["level"] as? String,
                category: object["category"] as? String,
                message: object["message"] as? String)
        case .regex(let expression, let groups):
            let range = NSRange(text.startIndex..<text.endIndex, in: text)
            guard let match = expression.firstMatch(in: text, range: range) else { return nil }
            func group(_ n: Int) -> String? {
                guard n > 0, let r = Range(match.range(at: n), in: text) else { return nil }
                return String(text[r])
            }
            func number(_ n: Int) -> Int? { group(n).flatMap { Int($0) } }
            var time: LogTimestamp?
            if let year = number(groups.year) ?? number(groups.year2).map({ 2000 + $0 }) {
                let days = Civil.days(year: year, month: number(groups.month) ?? 1, day: number(groups.day) ?? 1)
                let local = days * 86_400 + Int64((number(groups.hour) ?? 0) * 3600 + (number(groups.minute) ?? 0) * 60 + (number(groups.second) ?? 0))
                let offset = group(groups.offset).map(Self.offsetSeconds) ?? zone.offset(at: local - Int64(zone.offset(at: local)))
                time = LogTimestamp(seconds: local - Int64(offset), nanoseconds: Int32((number(groups.millisecond) ?? 0) * 1_000_000))
            }
            return ParsedLogLine(time: time, level: group(groups.level), category: group(groups.category), message: group(groups.message))
        }
    }

    /// `Z` or `+hh:mm` in seconds east of UTC.
    static func offsetSeconds(_ text: String) -> Int {
        guard text != "Z", text.count == 6, let h = Int(text.dropFirst().prefix(2)), let m = Int(text.suffix(2)) else { return 0 }
        return (text.hasPrefix("-") ? -1 : 1) * (h * 3600 + m * 60)
    }

    /// An ISO-8601 time; without an offset it is wall time in the local zone (`--since 2026-11-21T09:00:00`).
    public static func parseTimeAllowingLocal(_ text: String) -> LogTimestamp? {
        guard let utc = parseTime(text) else { return nil }
        let hasOffset = text.count > 19 && (text.hasSuffix("Z") || text.dropFirst(19).contains("+") || text.dropFirst(19).contains("-"))
        guard !hasOffset else { return utc }
        let zone = ZoneOffsetCache(.local)
        let guess = utc.seconds - Int64(zone.offset(at: utc.seconds))
        return LogTimestamp(seconds: utc.seconds - Int64(zone.offset(at: guess)), nanoseconds: utc.nanoseconds)
    }

    /// An ISO-8601 time with an offset (`2026-11-21T12:00:00.000+05:30`); no offset reads as UTC.
    static func parseTime(_ text: String) -> LogTimestamp? {
        let chars = Array(text.utf8)
        guard chars.count >= 19 else { return nil }
        func num(_ from: Int, _ length: Int) -> Int? {
            guard from + length <= chars.count else { return nil }
            var value = 0
            for c in chars[from..<(from + length)] {
                guard (48...57).contains(c) else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard let year = num(0, 4), let month = num(5, 2), let day = num(8, 2), let hour = num(11, 2),
            let minute = num(14, 2), let second = num(17, 2)
        else { return nil }
        var position = 19
        var millis = 0
        if position < chars.count, chars[position] == UInt8(ascii: "."), let ms = num(position + 1, 3) {
            millis = ms
            position += 4
        }
        let offset = position < chars.count ? offsetSeconds(String(decoding: chars[position...], as: UTF8.self)) : 0
        let local = Civil.days(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        return LogTimestamp(seconds: local - Int64(offset), nanoseconds: Int32(millis * 1_000_000))
    }

    /// The line without ANSI colour sequences.
    public static func stripColours(_ line: String) -> String {
        guard line.contains("\u{1B}[") else { return line }
        var out = ""
        var iterator = line.unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            if scalar == "\u{1B}" {
                guard let bracket = iterator.next(), bracket == "[" else { continue }
                while let c = iterator.next(), !(("a"..."z").contains(c) || ("A"..."Z").contains(c)) {}
                continue
            }
            out.unicodeScalars.append(scalar)
        }
        return out
    }
}
