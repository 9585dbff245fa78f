import OctopusConfig

/// The periods of a `dateFile` appender: the finest unit its pattern prints (`yyyy-MM-dd` rolls daily,
/// `yyyy-MM-dd-hh` hourly), computed in the appender's time zone, with the label a file of that period is named by.
///
/// Day, month and year periods start at local midnight (after a DST change too); hour, minute and second periods
/// are that many real seconds long, so a fall-back hour yields two files of the same label (the second gets the
/// next free name) and a spring-forward gap yields none.
struct RollPeriod: Sendable {
    enum Unit: Int, Sendable, Comparable {
        case second, minute, hour, day, month, year
        static func < (a: Unit, b: Unit) -> Bool { a.rawValue < b.rawValue }
    }

    let format: DateFormat
    let unit: Unit
    let offsets: ZoneOffsetCache
    /// The length of every label (the patterns' tokens are fixed-width).
    let labelLength: Int

    /// `nil` when the pattern prints no date or time at all, or prints a zone offset (not fixed-width).
    init?(pattern: String, timeZone: LogTimeZone) {
        let format = DateFormat(pattern)
        var finest: Unit?
        for piece in format.pieces {
            let unit: Unit?
            switch piece {
            case .year4, .year2: unit = .year
            case .month: unit = .month
            case .day: unit = .day
            case .hour: unit = .hour
            case .minute: unit = .minute
            case .second, .millisecond: unit = .second
            case .offset: return nil
            case .literal: unit = nil
            }
            if let unit, finest.map({ unit < $0 }) ?? true { finest = unit }
        }
        guard let finest else { return nil }
        self.format = format
        self.unit = finest
        self.offsets = ZoneOffsetCache(timeZone)
        var sample = LogBuffer()
        format.render(CivilTime(LogTimestamp(seconds: 0), offsetSeconds: 0), into: &sample)
        self.labelLength = sample.string.count
    }

    /// The start of the period containing `seconds`.
    func start(containing seconds: Int64) -> Int64 {
        switch unit {
        case .second: return seconds
        case .minute: return floorDiv(seconds, 60) * 60
        case .hour:
            // Whole local hours: most offsets are whole hours, but not all (India, Nepal, Chatham…).
            let offset = Int64(offsets.offset(at: seconds))
            return floorDiv(seconds + offset, 3600) * 3600 - offset
        case .day, .month, .year:
            let civil = CivilTime(LogTimestamp(seconds: seconds), offsetSeconds: offsets.offset(at: seconds))
            let day = unit == .day ? civil.day : 1
            let month = unit == .year ? 1 : civil.month
            return localMidnight(year: civil.year, month: month, day: day)
        }
    }

    /// The start of the period after the one starting at `start`.
    func next(after start: Int64) -> Int64 {
        switch unit {
        case .second: return start + 1
        case .minute: return start + 60
        case .hour: return self.start(containing: start + 3600 + 1800) // lands in the next local hour, whatever DST does
        case .day, .month, .year:
            let civil = CivilTime(LogTimestamp(seconds: start + 43_200), offsetSeconds: offsets.offset(at: start + 43_200))
            switch unit {
            case .day:
                let days = Civil.days(year: civil.year, month: civil.month, day: civil.day) + 1
                let next = CivilTime(LogTimestamp(seconds: days * 86_400), offsetSeconds: 0)
                return localMidnight(year: next.year, month: next.month, day: next.day)
            case .month:
                return civil.month == 12
                    ? localMidnight(year: civil.year + 1, month: 1, day: 1)
                    : localMidnight(year: civil.year, month: civil.month + 1, day: 1)
            default:
                return localMidnight(year: civil.year + 1, month: 1, day: 1)
            }
        }
    }

    /// The label of the period starting at `start` (`2024-01-01`).
    func label(_ start: Int64) -> String {
        var out = LogBuffer()
        format.render(CivilTime(LogTimestamp(seconds: start), offsetSeconds: offsets.offset(at: start)), into: &out)
        return out.string
    }

    /// The first instant of the local day, in UTC seconds: the wall time 00:00 (or the first instant after a
    /// gap, when a zone skips midnight).
    private func localMidnight(year: Int, month: Int, day: Int) -> Int64 {
        let local = Civil.days(year: year, month: month, day: day) * 86_400
        var guess = local - Int64(offsets.offset(at: local))
        let corrected = local - Int64(offsets.offset(at: guess))
        if corrected != guess, Int64(offsets.offset(at: corrected)) == local - corrected { guess = corrected }
        return guess
    }
}

@inline(__always)
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
