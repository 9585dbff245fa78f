import Foundation

/// A schedule's interval: milliseconds, or number-and-unit parts (`"5s"`, `"1m30s"`, `"2h"`, `"1.5h"`), units
/// `ms s m h d w`. Zero, negative or malformed intervals are errors (egg-schedule silently drops such a
/// schedule; Octopus refuses to start).
public struct Interval: Sendable, Hashable, CustomStringConvertible {
    /// The length in milliseconds, always more than zero.
    public let milliseconds: Int64

    public var duration: Duration { .milliseconds(milliseconds) }

    public init(milliseconds: Int64) throws(IntervalError) {
        guard milliseconds > 0 else { throw IntervalError(text: "\(milliseconds)", reason: "must be more than zero") }
        self.milliseconds = milliseconds
    }

    public init(_ duration: Duration) throws(IntervalError) {
        let (seconds, attoseconds) = duration.components
        try self.init(milliseconds: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    private static let units: [(name: String, milliseconds: Double)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
    ]

    /// Parses `"5s"`, `"1m30s"`, `"250ms"`, `"2h"`, or a number of milliseconds (`"5000"`).
    public init(parsing text: String) throws(IntervalError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func fail(_ reason: String) -> IntervalError { IntervalError(text: text, reason: reason) }
        guard !trimmed.isEmpty else { throw fail("is empty") }
        if trimmed.hasPrefix("-") { throw fail("must be more than zero") }
        if let plain = Int64(trimmed) {
            guard plain > 0 else { throw fail("must be more than zero") }
            milliseconds = plain
            return
        }
        var total = 0.0
        var rest = Substring(trimmed)
        var seen: Set<String> = []
        while !rest.isEmpty {
            let numberText = rest.prefix { $0.isNumber || $0 == "." }
            guard !numberText.isEmpty, let number = Double(numberText) else {
                throw fail("expected a number at \"\(rest)\"")
            }
            rest = rest.dropFirst(numberText.count).drop { $0 == " " }
            let unitText = rest.prefix { $0.isLetter }.lowercased()
            guard !unitText.isEmpty else {
                throw fail("\"\(numberText)\" has no unit; units are ms, s, m, h, d, w")
            }
            guard let unit = Self.units.first(where: { $0.name == unitText }) else {
                throw fail("unknown unit \"\(unitText)\"; units are ms, s, m, h, d, w")
            }
            guard seen.insert(unit.name).inserted else { throw fail("has the unit \"\(unit.name)\" twice") }
            total += number * unit.milliseconds
            rest = rest.dropFirst(unitText.count).drop { $0 == " " }
        }
        let rounded = total.rounded()
        guard total > 0 else { throw fail("must be more than zero") }
        guard rounded >= 1 else { throw fail("must be at least 1 ms (it is \(total) ms)") }
        guard rounded < 9.0e15 else { throw fail("is too long") }
        milliseconds = Int64(rounded)
    }

    /// `1m30s`, `250ms`, `2h`.
    public var description: String {
        var rest = milliseconds
        var text = ""
        for (name, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where rest >= size {
            text += "\(rest / size)\(name)"
            rest %= size
        }
        if rest > 0 || text.isEmpty { text += "\(rest)ms" }
        return text
    }
}

/// An interval that cannot be read.
public struct IntervalError: Error, Sendable, Hashable, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "invalid interval \"\(text)\": \(reason)" }
}
