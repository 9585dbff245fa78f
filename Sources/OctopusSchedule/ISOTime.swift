public import Foundation
import OctopusConfig

/// ISO-8601 times as the scheduler prints and reads them: `2026-11-23T09:00:00+05:30`.
public enum ISOTime {
    /// Formats `date` as wall time in `zone` with that zone's offset at that instant (`+00:00` for UTC);
    /// `fractional` adds milliseconds.
    public static func format(_ date: Date, in zone: TimeZone, fractional: Bool = false) -> String {
        let rules = ZoneRules.rules(for: zone)
        let seconds = date.timeIntervalSince1970
        // To the nearest millisecond first: a time due at .521 is stored as .52099999… in binary, and must print
        // as the millisecond it is.
        let milliseconds = Int64((seconds * 1000).rounded())
        let whole = fractional ? Int64((Double(milliseconds) / 1000).rounded(.down)) : Int64(seconds.rounded(.down))
        let offset = rules.offset(at: whole)
        let f = Civil.Fields(wall: whole + offset)
        var text = pad(f.year, 4) + "-" + pad(f.month, 2) + "-" + pad(f.day, 2) + "T" + pad(f.hour, 2) + ":"
            + pad(f.minute, 2) + ":" + pad(f.second, 2)
        if fractional {
            text += "." + pad(Int(milliseconds - whole * 1000), 3)
        }
        let sign = offset < 0 ? "-" : "+"
        let magnitude = Int(abs(offset))
        return text + sign + pad(magnitude / 3600, 2) + ":" + pad(magnitude % 3600 / 60, 2)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// Reads `2026-11-23T09:00:00+05:30`, `…Z`, `…T09:00` or `2026-11-23` (midnight); `T` may be a space and
    /// seconds may have a fraction. Without an offset the time is wall time in `zone`: a wall time that occurs
    /// twice (fall back) is the first; one that does not occur (spring forward) is read with the offset before
    /// the gap, as Python's `fold=0` does. `nil` when the text is not such a time.
    public static func parse(_ text: String, in zone: TimeZone) -> Date? {
        let chars = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        var i = 0
        func number(_ width: Int) -> Int? {
            guard i + width <= chars.count else { return nil }
            var value = 0
            for c in chars[i..<i + width] {
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            i += width
            return value
        }
        func expect(_ c: Character) -> Bool {
            guard i < chars.count, chars[i] == c.asciiValue else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            (1...12).contains(month), (1...Civil.daysInMonth(year: year, month: month)).contains(day)
        else { return nil }
        var (hour, minute, second, fraction) = (0, 0, 0, 0.0)
        if i < chars.count, chars[i] == UInt8(ascii: "T") || chars[i] == UInt8(ascii: " ") {
            i += 1
            guard let h = number(2), expect(":"), let m = number(2), h < 24, m < 60 else { return nil }
            (hour, minute) = (h, m)
            if expect(":") {
                guard let s = number(2), s < 60 else { return nil }
                second = s
                if expect(".") || expect(",") {
                    var scale = 0.1
                    while i < chars.count, chars[i] >= 48, chars[i] <= 57 {
                        fraction += Double(chars[i] - 48) * scale
                        scale /= 10
                        i += 1
                    }
                }
            }
        }
        let wall = Civil.Fields(year: year, month: month, day: day, hour: hour, minute: minute, second: second).wall
        var instant: Int64
        if i == chars.count {
            instant = resolve(wall: wall, rules: ZoneRules.rules(for: zone))
        } else if expect("Z") || expect("z") {
            instant = wall
        } else {
            guard i < chars.count, chars[i] == UInt8(ascii: "+") || chars[i] == UInt8(ascii: "-") else { return nil }
            let negative = chars[i] == UInt8(ascii: "-")
            i += 1
            guard let oh = number(2) else { return nil }
            _ = expect(":")
            let om = number(2) ?? 0
            let offset = Int64(oh * 3600 + om * 60)
            instant = wall - (negative ? -offset : offset)
        }
        guard i == chars.count else { return nil }
        return Date(timeIntervalSince1970: Double(instant) + fraction)
    }

    /// The first instant whose wall time in the zone is `wall`, or the gap rule above.
    static func resolve(wall: Int64, rules: ZoneRules) -> Int64 {
        // The offsets in force within a day either side are the only candidates.
        let before = rules.offset(at: wall - 86_400 * 2)
        let after = rules.offset(at: wall + 86_400 * 2)
        let candidates = [wall - max(before, after), wall - min(before, after)].sorted()
        for instant in candidates where instant + rules.offset(at: instant) == wall { return instant }
        let early = rules.segment(at: wall - before)
        return wall - early.offsetBefore
    }
}
