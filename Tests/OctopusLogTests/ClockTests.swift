import Foundation
import Synchronization
import Testing

@testable import OctopusLog

#if canImport(Glibc)
import Glibc
#endif

private func kernelNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

private func nanoseconds(_ t: LogTimestamp) -> Int64 { t.seconds * 1_000_000_000 + Int64(t.nanoseconds) }

@Suite struct ClockTests {
    /// The log clock extrapolates from the kernel's clock between readings: each of its readings lies between the
    /// kernel's readings just before and just after it (give or take far less than the millisecond a line shows),
    /// its nanoseconds are in range, and within one thread it never goes back — across the first readings of each
    /// thread, across rebases, and after a pause longer than a rebase window.
    @Test func readsTheWallClockAndNeverGoesBackWithinAThread() async throws {
        let tolerance: Int64 = 200_000
        let failures = Mutex<[String]>([])
        await inParallel(4) { t in
            var previous = Int64.min
            for i in 0..<40_000 {
                if i % 10_000 == 9_999 { usleep(3_000) }
                let before = kernelNanoseconds()
                let reading = LogTimestamp.now()
                let after = kernelNanoseconds()
                let value = nanoseconds(reading)
                var problem: String?
                if reading.nanoseconds < 0 || reading.nanoseconds >= 1_000_000_000 {
                    problem = "nanoseconds out of range: \(reading.nanoseconds)"
                } else if value < before - tolerance || value > after + tolerance {
                    problem = "reading \(value) outside [\(before), \(after)]"
                } else if value < previous {
                    problem = "went back by \(previous - value) ns"
                }
                if let problem {
                    failures.withLock { $0.append("thread \(t), reading \(i): \(problem)") }
                    return
                }
                previous = value
            }
        }
        #expect(failures.withLock { $0 } == [])
    }
}
