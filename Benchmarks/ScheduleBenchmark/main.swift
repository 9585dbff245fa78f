// Scheduling benchmarks, run by Benchmarks/run_schedule_benchmark.py beside croniter and node's setInterval.
//
//   ScheduleBenchmark cron FILE [K]        per line "EXPR<TAB>START<TAB>TZ": parse once, then K successive next()
//                                          calls, the whole set repeated until ~1 s has passed; prints ns per
//                                          call and a checksum of the first five fire times of every line
//   ScheduleBenchmark cron-times FILE      the first five fire times of every line, tab-separated (to compare)
//   ScheduleBenchmark timer interval MS N  a Scheduler on the system clock with an interval task, N ticks
//   ScheduleBenchmark timer cron EXPR N    the same with a cron task
//
// Timer lateness is measured where a user sees it: when the task's body starts, against the tick's ideal time, in
// microseconds.

import Foundation
import Logging
import OctopusSchedule
import Synchronization

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

@inline(never) func blackHole(_ value: Date?) {
    if value == Date.distantPast { print("") }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let mode = arguments.first else { fail("usage: ScheduleBenchmark cron FILE [K] | timer interval MS N | timer cron EXPR N") }

switch mode {
case "cron":
    guard arguments.count >= 2 else { fail("usage: ScheduleBenchmark cron FILE [K]") }
    let k = arguments.count > 2 ? Int(arguments[2]) ?? 100 : 100
    let text = try String(contentsOfFile: arguments[1], encoding: .utf8)
    var cases: [(CronExpression, Date)] = []
    var checksum: Int64 = 0
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let fields = line.split(separator: "\t").map(String.init)
        guard fields.count >= 3, let zone = ScheduleZone.parse(fields[2]) else { fail("bad line: \(line)") }
        let expression = try CronExpression(fields[0], timeZone: zone)
        guard let start = ISOTime.parse(fields[1], in: zone) else { fail("bad start: \(fields[1])") }
        cases.append((expression, start))
        var cursor = start
        for _ in 0..<5 {
            guard let next = expression.next(after: cursor) else { break }
            checksum &+= Int64(next.timeIntervalSince1970)
            cursor = next
        }
    }
    var calls = 0
    let clock = ContinuousClock()
    let began = clock.now
    while clock.now - began < .seconds(1) {
        for (expression, start) in cases {
            var cursor: Date? = start
            for _ in 0..<k {
                cursor = expression.next(after: cursor!)
                if cursor == nil { break }
            }
            blackHole(cursor)
            calls += k
        }
    }
    let elapsed = clock.now - began
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(String(format: "impl=octopus expressions=%d calls=%d ns_per_call=%.1f checksum=%lld", cases.count, calls, seconds * 1e9 / Double(calls), checksum))

case "cron-times":
    guard arguments.count >= 2 else { fail("usage: ScheduleBenchmark cron-times FILE") }
    var out = ""
    for line in try String(contentsOfFile: arguments[1], encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
        let fields = line.split(separator: "\t").map(String.init)
        guard fields.count >= 3, let zone = ScheduleZone.parse(fields[2]), let start = ISOTime.parse(fields[1], in: zone),
            let expression = try? CronExpression(fields[0], timeZone: zone)
        else {
            out += "ERROR\n"
            continue
        }
        var times: [String] = []
        var cursor = start
        while times.count < 5, let next = expression.next(after: cursor) {
            times.append(ISOTime.format(next, in: zone))
            cursor = next
        }
        out += times.joined(separator: "\t") + "\n"
    }
    FileHandle.standardOutput.write(Data(out.utf8))

case "timer":
    guard arguments.count >= 4, let ticks = Int(arguments[3]) else { fail("usage: ScheduleBenchmark timer interval MS N | timer cron EXPR N") }
    let schedule: Schedule
    if arguments[1] == "interval" {
        guard let ms = Int64(arguments[2]) else { fail("bad period") }
        schedule = Schedule(interval: "\(ms)ms")
    } else {
        schedule = Schedule(cron: arguments[2], timeZone: "UTC")
    }
    let samples = Mutex<[(scheduled: Date, started: Date)]>([])
    let done = Atomic<Bool>(false)
    let scheduler = Scheduler(environment: "bench", log: Logger(label: "schedule") { _ in SwiftLogNoOpLogHandler() })
    try scheduler.register(ScheduledTask(name: "probe", schedule: schedule) { context in
        let started = Date()
        let count = samples.withLock { samples in
            samples.append((context.tick.scheduledTime, started))
            return samples.count
        }
        if count == ticks, !done.exchange(true, ordering: .relaxed) { scheduler.stop() }
    })
    try await scheduler.run()
    // Scheduled times are the ideal ones (interval ticks sit on the grid start + k * period, since each is computed
    // from the previous scheduled time): lateness against them shows any accumulated drift too.
    let lateness = samples.withLock { $0 }.map { $0.started.timeIntervalSince($0.scheduled) * 1e6 }
    let sorted = lateness.sorted()
    func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))] }
    let early = lateness.filter { $0 < 0 }.count
    let drift = (lateness.suffix(5).reduce(0, +) / 5) - (lateness.prefix(5).reduce(0, +) / 5)
    print(String(format: "impl=octopus-%@ ticks=%d mean_late_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f min_us=%.1f early=%d drift_us=%.1f",
        arguments[1], lateness.count, lateness.reduce(0, +) / Double(lateness.count), at(0.5), at(0.99), sorted.last ?? 0, sorted.first ?? 0, early, drift))

default:
    fail("unknown mode \(mode)")
}
