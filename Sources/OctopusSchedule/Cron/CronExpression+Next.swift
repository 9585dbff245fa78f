public import Foundation
import OctopusConfig

extension CronExpression {
    /// The first fire time strictly after `date`, or `nil` when there is none before the year 2^31.
    public func next(after date: Date) -> Date? {
        let seconds = date.timeIntervalSince1970
        let floor = seconds.rounded(.down)
        guard let instant = nextInstant(after: Int64(floor)) else { return nil }
        return Date(timeIntervalSince1970: Double(instant))
    }

    /// The last fire time strictly before `date`, or `nil` when there is none.
    public func previous(before date: Date) -> Date? {
        let seconds = date.timeIntervalSince1970
        let ceiling = seconds.rounded(.up)
        guard let instant = previousInstant(before: Int64(ceiling)) else { return nil }
        return Date(timeIntervalSince1970: Double(instant))
    }

    /// The first fire time, in seconds since 1970, strictly after `instant`.
    ///
    /// The search runs on the wall clock of one span of constant UTC offset at a time. Inside a span wall time
    /// and real time move together; at a span's end the gap (spring forward) or the repeated hour (fall back) is
    /// where the daylight-saving policy applies.
    func nextInstant(after instant: Int64) -> Int64? {
        var cursor = instant + 1
        for _ in 0..<1_000 {
            let span = rules.segment(at: cursor)
            var from = cursor + span.offset
            if !firesInRepeatedHour, let start = span.start, span.offsetBefore > span.offset {
                // The hour after a fall-back transition repeats wall times of the first pass: skip them.
                from = max(from, start + span.offsetBefore)
            }
            let limit = span.end.map { $0 + span.offset } ?? Int64.max
            if let wall = nextWall(atOrAfter: from), wall < limit { return wall - span.offset }
            guard let end = span.end else { return nil }
            if span.offsetAfter > span.offset, let wall = nextWall(atOrAfter: limit), wall < end + span.offsetAfter {
                // A wall time in the spring-forward gap fires once, at the first instant after the gap.
                return end
            }
            cursor = end
        }
        return nil
    }

    /// The last fire time, in seconds since 1970, strictly before `instant`: the mirror of ``nextInstant(after:)``.
    func previousInstant(before instant: Int64) -> Int64? {
        var cursor = instant - 1
        for _ in 0..<1_000 {
            let span = rules.segment(at: cursor)
            var low = span.start.map { $0 + span.offset } ?? Int64.min
            if !firesInRepeatedHour, let start = span.start, span.offsetBefore > span.offset {
                low = start + span.offsetBefore
            }
            if let wall = previousWall(atOrBefore: cursor + span.offset), wall >= low { return wall - span.offset }
            guard let start = span.start else { return nil }
            if span.offsetBefore < span.offset, let wall = previousWall(atOrBefore: start + span.offset - 1),
                wall >= start + span.offsetBefore
            {
                return start
            }
            cursor = start - 1
        }
        return nil
    }

    /// The first wall time at or after `start` that matches every field (no zone involved).
    @inline(__always)
    func nextWall(atOrAfter start: Int64) -> Int64? {
        var f = Civil.Fields(wall: start)
        // 4,812 months: the calendar repeats every 400 years, so a match exists within that (checked at parse).
        var monthSteps = 0
        while monthSteps < 4_812 {
            if months & (1 << UInt64(f.month)) == 0 || f.day > 31 {
                let later = months & ~((2 << UInt64(f.month)) - 1)
                if later != 0 {
                    f.month = later.trailingZeroBitCount
                } else {
                    f.year += 1
                    f.month = months.trailingZeroBitCount
                }
                (f.day, f.hour, f.minute, f.second) = (1, 0, 0, 0)
                monthSteps += 1
                continue
            }
            let days = dayMask(year: f.year, month: f.month) & ~((1 << UInt64(f.day)) - 1)
            if days == 0 {
                f.day = 32  // no day left in this month: the month test above moves on
                continue
            }
            let day = days.trailingZeroBitCount
            if day != f.day { (f.day, f.hour, f.minute, f.second) = (day, 0, 0, 0) }
            let hoursLeft = hours & ~((1 << UInt64(f.hour)) - 1)
            if hoursLeft == 0 {
                (f.day, f.hour, f.minute, f.second) = (f.day + 1, 0, 0, 0)
                continue
            }
            let hour = hoursLeft.trailingZeroBitCount
            if hour != f.hour { (f.hour, f.minute, f.second) = (hour, 0, 0) }
            let minutesLeft = minutes & ~((1 << UInt64(f.minute)) - 1)
            if minutesLeft == 0 {
                (f.hour, f.minute, f.second) = (f.hour + 1, 0, 0)
                continue
            }
            let minute = minutesLeft.trailingZeroBitCount
            if minute != f.minute { (f.minute, f.second) = (minute, 0) }
            let secondsLeft = seconds & ~((1 << UInt64(f.second)) - 1)
            if secondsLeft == 0 {
                (f.minute, f.second) = (f.minute + 1, 0)
                continue
            }
            f.second = secondsLeft.trailingZeroBitCount
            return f.wall
        }
        return nil
    }

    /// The last wall time at or before `start` that matches every field.
    @inline(__always)
    func previousWall(atOrBefore start: Int64) -> Int64? {
        var f = Civil.Fields(wall: start)
        var monthSteps = 0
        while monthSteps < 4_812 {
            if months & (1 << UInt64(f.month)) == 0 || f.day < 1 {
                let earlier = months & ((1 << UInt64(f.month)) - 1)
                if earlier != 0 {
                    f.month = 63 - earlier.leadingZeroBitCount
                } else {
                    f.year -= 1
                    f.month = 63 - months.leadingZeroBitCount
                }
                (f.day, f.hour, f.minute, f.second) = (Civil.daysInMonth(year: f.year, month: f.month), 23, 59, 59)
                monthSteps += 1
                continue
            }
            let days = dayMask(year: f.year, month: f.month) & ((2 << UInt64(f.day)) - 1)
            if days == 0 {
                f.day = 0
                continue
            }
            let day = 63 - days.leadingZeroBitCount
            if day != f.day { (f.day, f.hour, f.minute, f.second) = (day, 23, 59, 59) }
            let hoursLeft = f.hour < 0 ? 0 : hours & ((2 << UInt64(f.hour)) - 1)
            if hoursLeft == 0 {
                (f.day, f.hour, f.minute, f.second) = (f.day - 1, 23, 59, 59)
                continue
            }
            let hour = 63 - hoursLeft.leadingZeroBitCount
            if hour != f.hour { (f.hour, f.minute, f.second) = (hour, 59, 59) }
            let minutesLeft = f.minute < 0 ? 0 : minutes & ((2 << UInt64(f.minute)) - 1)
            if minutesLeft == 0 {
                (f.hour, f.minute, f.second) = (f.hour - 1, 59, 59)
                continue
            }
            let minute = 63 - minutesLeft.leadingZeroBitCount
            if minute != f.minute { (f.minute, f.second) = (minute, 59) }
            let secondsLeft = f.second < 0 ? 0 : seconds & ((2 << UInt64(f.second)) - 1)
            if secondsLeft == 0 {
                (f.minute, f.second) = (f.minute - 1, 59)
                continue
            }
            f.second = 63 - secondsLeft.leadingZeroBitCount
            return f.wall
        }
        return nil
    }
}
