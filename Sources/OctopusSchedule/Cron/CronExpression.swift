public import Foundation
import OctopusConfig

/// A cron expression: 5 fields (`m h dom mon dow`) or 6 with seconds first (`s m h dom mon dow`), in a time zone.
///
/// ```swift
/// let weekdays = try CronExpression("30 9 * * MON-FRI", timeZone: TimeZone(identifier: "Europe/Berlin")!)
/// let next = weekdays.next(after: Date())        // the next 09:30 on a weekday, Berlin time
/// ```
///
/// Syntax: `*`, `?`, lists `1,5`, ranges `1-5`, steps `*/15`, `10-40/5`, `5/15` (5 to the field's maximum by 15),
/// names `JAN`–`DEC` and `SUN`–`SAT` in any case, weekday 0–7 (0 and 7 are Sunday). Day of month: `L` (last
/// day), `L-n` (n days before it), `nW` (the weekday nearest day n, within the month), `LW` (the last weekday).
/// Day of week: `nL` (the last weekday n of the month), `n#k` (the k-th weekday n). Presets: `@yearly`,
/// `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.
///
/// **The day rule** (cron-parser's, which egg-schedule uses): a day field is unrestricted when it covers its whole
/// range (`*`, `?`, `*/1`, `1-31`, `0-6`). When both day fields are restricted a day matching either fires;
/// otherwise a day must match the restricted one.
///
/// **Daylight saving time**: a time that falls in a spring-forward gap fires once, at the first instant after the
/// gap. In a fall-back overlap, an expression whose seconds, minutes or hours field begins with `*` fires at every
/// real instant that matches (both passes); any other expression fires only in the first pass.
public struct CronExpression: Sendable, CustomStringConvertible {
    /// The expression as written.
    public let source: String
    /// The zone whose wall clock the fields describe.
    public let timeZone: TimeZone

    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    /// Bits 0…6 (Sunday … Saturday).
    let daysOfWeek: UInt64
    /// `L-n`: bit n (`L` is bit 0).
    let lastDayOffsets: UInt64
    /// `nW`: bit n.
    let nearestWeekdays: UInt64
    /// `LW`.
    let lastWeekdayOfMonth: Bool
    /// `nL`: bit n.
    let lastWeekdays: UInt64
    /// `n#k`: bit `n * 8 + k`.
    let nthWeekdays: UInt64
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    /// The seconds, minutes or hours field begins with `*`: such an expression fires in both passes of a
    /// fall-back overlap.
    let firesInRepeatedHour: Bool
    /// For each weekday of the 1st of a month, the days 1…31 whose weekday is in `daysOfWeek`.
    let weekdayDays: [UInt64]
    let rules: ZoneRules

    public var description: String { source }

    /// The presets and what they stand for.
    public static let presets: [(name: String, expansion: String)] = [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
    ]

    /// Parses `text`, whose fields are wall-clock times in `timeZone` (default: the process's local zone).
    ///
    /// - Throws: ``CronError`` naming the field and the text at fault, or saying that the expression never fires
    ///   (`0 0 30 2 *`).
    public init(_ text: String, timeZone: TimeZone = .current) throws(CronError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var body = trimmed
        if trimmed.hasPrefix("@") {
            guard let preset = Self.presets.first(where: { $0.name == trimmed.lowercased() }) else {
                throw CronError(
                    expression: text, field: nil,
                    reason: "unknown preset \"\(trimmed)\"; presets are \(Self.presets.map(\.name).joined(separator: ", "))")
            }
            body = preset.expansion
        }
        var parts = body.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 || parts.count == 6 else {
            throw CronError(
                expression: text, field: nil,
                reason: "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), found \(parts.count)")
        }
        if parts.count == 5 { parts.insert("0", at: 0) }
        let fields = CronField.allCases
        var parsed: [CronField: ParsedField] = [:]
        for (field, part) in zip(fields, parts) {
            do {
                parsed[field] = try ParsedField(part, field: field)
            } catch {
                throw CronError(expression: text, field: field, reason: error.reason)
            }
        }
        func p(_ f: CronField) -> ParsedField { parsed[f] ?? ParsedField() }
        source = text
        self.timeZone = timeZone
        seconds = p(.second).bits
        minutes = p(.minute).bits
        hours = p(.hour).bits
        months = p(.month).bits
        let dom = p(.dayOfMonth)
        daysOfMonth = dom.bits
        lastDayOffsets = dom.lastDayOffsets
        nearestWeekdays = dom.nearestWeekdays
        lastWeekdayOfMonth = dom.lastWeekday
        let dow = p(.dayOfWeek)
        var weekdays = dow.bits
        if weekdays & (1 << 7) != 0 { weekdays = (weekdays | 1) & 0x7F }
        daysOfWeek = weekdays
        lastWeekdays = dow.lastWeekdays
        nthWeekdays = dow.nthWeekdays
        dayOfMonthRestricted = !(dom.bits == Self.mask(1...31) && !dom.hasSpecials)
        dayOfWeekRestricted = !(weekdays == Self.mask(0...6) && !dow.hasSpecials)
        firesInRepeatedHour = parts[0].hasPrefix("*") || parts[1].hasPrefix("*") || parts[2].hasPrefix("*")
        weekdayDays = (0..<7).map { firstWeekday in
            var days: UInt64 = 0
            for day in 1...31 where weekdays & (1 << ((firstWeekday + day - 1) % 7)) != 0 { days |= 1 << day }
            return days
        }
        rules = ZoneRules.rules(for: timeZone)
        if !firesAtAll {
            throw CronError(
                expression: text, field: .dayOfMonth,
                reason: "it never fires: no day of any month matches day-of-month \"\(parts[3])\", month \"\(parts[4])\" and day-of-week \"\(parts[5])\"")
        }
    }

    static func mask(_ range: ClosedRange<Int>) -> UInt64 {
        range.reduce(0) { $0 | (1 << UInt64($1)) }
    }

    /// The Gregorian calendar repeats every 400 years, weekdays included: a month pattern that never matches in
    /// 400 years never matches.
    private var firesAtAll: Bool {
        for year in 2000..<2400 {
            for month in 1...12 where months & (1 << month) != 0 {
                if dayMask(year: year, month: month) != 0 { return true }
            }
        }
        return false
    }

    /// The days (bits 1…31) of a month that match the day fields.
    @inline(__always)
    func dayMask(year: Int, month: Int) -> UInt64 {
        let length = Civil.daysInMonth(year: year, month: month)
        let valid: UInt64 = ((1 << UInt64(length + 1)) - 1) & ~1
        if !dayOfMonthRestricted && !dayOfWeekRestricted { return valid }
        let firstWeekday = Civil.weekday(days: Civil.days(year: year, month: month, day: 1))
        var byMonth: UInt64 = 0
        if dayOfMonthRestricted {
            byMonth = daysOfMonth
            if lastDayOffsets != 0 {
                var offsets = lastDayOffsets
                while offsets != 0 {
                    let n = offsets.trailingZeroBitCount
                    offsets &= offsets - 1
                    if length - n >= 1 { byMonth |= 1 << UInt64(length - n) }
                }
            }
            if nearestWeekdays != 0 {
                var days = nearestWeekdays
                while days != 0 {
                    let n = days.trailingZeroBitCount
                    days &= days - 1
                    guard n <= length else { continue }
                    let weekday = (firstWeekday + n - 1) % 7
                    var day = n
                    if weekday == 6 { day = n > 1 ? n - 1 : n + 2 }
                    if weekday == 0 { day = n < length ? n + 1 : n - 2 }
                    byMonth |= 1 << UInt64(day)
                }
            }
            if lastWeekdayOfMonth {
                let weekday = (firstWeekday + length - 1) % 7
                byMonth |= 1 << UInt64(weekday == 6 ? length - 1 : weekday == 0 ? length - 2 : length)
            }
        }
        var byWeek: UInt64 = 0
        if dayOfWeekRestricted {
            byWeek = weekdayDays[firstWeekday]
            if lastWeekdays != 0 || nthWeekdays != 0 {
                for weekday in 0..<7 {
                    let first = 1 + (weekday - firstWeekday + 7) % 7
                    if lastWeekdays & (1 << UInt64(weekday)) != 0 {
                        byWeek |= 1 << UInt64(first + (length - first) / 7 * 7)
                    }
                    for k in 1...5 where nthWeekdays & (1 << UInt64(weekday * 8 + k)) != 0 {
                        let day = first + (k - 1) * 7
                        if day <= length { byWeek |= 1 << UInt64(day) }
                    }
                }
            }
        }
        let days =
            dayOfMonthRestricted && dayOfWeekRestricted ? byMonth | byWeek : dayOfMonthRestricted ? byMonth : byWeek
        return days & valid
    }
}

/// One field as parsed: its plain values as bits, and the day fields' special forms.
struct ParsedField {
    var bits: UInt64 = 0
    var lastDayOffsets: UInt64 = 0
    var nearestWeekdays: UInt64 = 0
    var lastWeekday = false
    var lastWeekdays: UInt64 = 0
    var nthWeekdays: UInt64 = 0

    var hasSpecials: Bool {
        lastDayOffsets != 0 || nearestWeekdays != 0 || lastWeekday || lastWeekdays != 0 || nthWeekdays != 0
    }

    init() {}

    /// A reason alone: the caller adds the expression.
    struct Failure: Error {
        var reason: String
    }

    init(_ text: String, field: CronField) throws(Failure) {
        let name = field.rawValue
        let bounds = field.bounds
        func fail(_ what: String) -> Failure { Failure(reason: "\(name) \"\(text)\" \(what)") }
        func value(_ token: Substring) throws(Failure) -> Int {
            if let number = Int(token) {
                guard bounds.contains(number) else {
                    throw Failure(
                        reason: "\(name) \"\(text)\" is out of range \(bounds.lowerBound)-\(bounds.upperBound)"
                            + (token == Substring(text) ? "" : " (\(token))"))
                }
                return number
            }
            if let index = field.names.firstIndex(of: token.uppercased()) { return index + field.firstNamed }
            throw fail(
                field.names.isEmpty
                    ? "is not a number in \(bounds.lowerBound)-\(bounds.upperBound)"
                    : "has \"\(token)\", which is neither a number in \(bounds.lowerBound)-\(bounds.upperBound) nor one of \(field.names.joined(separator: " "))")
        }
        guard !text.isEmpty else { throw fail("is empty") }
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw fail("has an empty list item") }
            let upper = item.uppercased()
            if field == .dayOfMonth {
                if upper == "L" {
                    lastDayOffsets |= 1
                    continue
                }
                if upper == "LW" {
                    lastWeekday = true
                    continue
                }
                if upper.hasPrefix("L-") {
                    guard let n = Int(upper.dropFirst(2)), (0...30).contains(n) else {
                        throw fail("is out of range: L-n takes n from 0 to 30")
                    }
                    lastDayOffsets |= 1 << UInt64(n)
                    continue
                }
                if upper.hasSuffix("W") {
                    guard let n = Int(upper.dropLast()) else { throw fail("is not a valid nearest-weekday form (nW, LW)") }
                    guard (1...31).contains(n) else { throw fail("is out of range 1-31 (\(n)W)") }
                    nearestWeekdays |= 1 << UInt64(n)
                    continue
                }
            }
            if field == .dayOfWeek {
                if upper.count > 1, upper.hasSuffix("L") {
                    let weekday = try value(item.dropLast()) % 7
                    lastWeekdays |= 1 << UInt64(weekday)
                    continue
                }
                if let hash = item.firstIndex(of: "#") {
                    let weekday = try value(item[..<hash]) % 7
                    guard let k = Int(item[item.index(after: hash)...]), (1...5).contains(k) else {
                        throw fail("has an occurrence out of range 1-5 (n#k)")
                    }
                    nthWeekdays |= 1 << UInt64(weekday * 8 + k)
                    continue
                }
            }
            // [range or *][/step]
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw fail("has more than one step (/)") }
            var step = 1
            if pieces.count == 2 {
                guard let n = Int(pieces[1]) else { throw fail("has a step \"\(pieces[1])\" that is not a number") }
                guard n >= 1 else { throw fail("has a step \(n); a step is 1 or more") }
                step = n
            }
            let range = pieces[0]
            var low: Int
            var high: Int
            if range == "*" || range == "?" {
                (low, high) = (bounds.lowerBound, field == .dayOfWeek ? 6 : bounds.upperBound)
            } else if let dash = range.firstIndex(of: "-") {
                let from = range[..<dash]
                let to = range[range.index(after: dash)...]
                guard !from.isEmpty, !to.isEmpty, !to.contains("-") else { throw fail("is not a valid range") }
                low = try value(from)
                high = try value(to)
                guard low <= high else { throw fail("is a backwards range (\(low) > \(high))") }
            } else {
                low = try value(range)
                // `a/n` runs from a to the field's maximum.
                high = pieces.count == 2 ? (field == .dayOfWeek ? 6 : bounds.upperBound) : low
                if field == .dayOfWeek, pieces.count == 2, low == 7 { high = 7 }
            }
            var v = low
            while v <= high {
                bits |= 1 << UInt64(v)
                v += step
            }
        }
    }
}
