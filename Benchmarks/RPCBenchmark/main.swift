// RPC round trips over a Unix socket, between two processes, in the C ping-pong peer's output format.
//   RPCBenchmark serve PATH                 a master offering `ping`; runs until stdin closes
//   RPCBenchmark client PATH CALLS INFLIGHT [loop] [raw]
//                                           a branch making CALLS calls, INFLIGHT at a time, from tasks on the
//                                           global pool, or with `loop` from tasks preferring the branch's executor;
//                                           `raw` calls a raw echo action (no codec)
import Foundation
import NIOCore
import OctopusRPC

struct Ping: RPCAction {
    struct Input: Codable, Sendable {
        var sequence: Int
        var payload: String
    }
    typealias Output = Int
    static let name = "ping"
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(
        Data("usage: RPCBenchmark serve PATH | client PATH CALLS INFLIGHT | echo-serve PATH | echo-client PATH ROUNDS | codec N\n".utf8))
    exit(2)
}
let path = arguments[2]

if arguments[1] == "echo-serve" {
    try NIOEcho.serve(path)
    exit(0)
}
if arguments[1] == "echo-client" {
    let (unsorted, seconds) = try NIOEcho.client(path, rounds: Int(arguments[3])!)
    let sorted = unsorted.sorted()
    func at(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000 }
    let rate = Double(sorted.count) / seconds
    print(
        String(
            format: "client=0 rt_per_s=%.0f mean_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.1f max_us=%.0f", rate,
            1e6 / rate, at(0.5), at(0.99), at(0.999), at(1)))
    print(String(format: "transport=unix nio-echo rounds=%d aggregate_rt_per_s=%.0f", sorted.count, rate))
    exit(0)
}

if arguments[1] == "codec" {
    // RPCBenchmark codec N [foundation]: the cost of the four codec operations of one call, in isolation.
    let n = Int(path)!
    let foundation = arguments.contains("foundation")
    let codec: any RPCCodec = foundation ? FoundationJSONCodec() : JSONCodec()
    let input = Ping.Input(sequence: 123_456, payload: String(repeating: "x", count: 24))
    var sink = 0
    let start = DispatchTime.now().uptimeNanoseconds
    for i in 0..<n {
        var body = ByteBuffer()
        try codec.encode(input, into: &body)
        let decoded = try codec.decode(Ping.Input.self, from: body)
        var answer = ByteBuffer()
        try codec.encode(decoded.sequence + i, into: &answer)
        sink &+= try codec.decode(Int.self, from: answer)
    }
    let ns = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(n)
    print(
        String(
            format: "codec %@: %.0f ns per call (encode+decode input, encode+decode output) [%d]",
            foundation ? "FoundationJSONCodec" : "JSONCodec", ns, sink & 1))
    exit(0)
}

if arguments[1] == "serve" {
    let handlers = RPCHandlers()
    handlers.register(Ping.self) { input in input.sequence }
    handlers.registerRaw("raw") { body, _ in body }
    var options = RPCOptions()
    options.heartbeatInterval = nil
    let master = RPCMaster(handlers: handlers, options: options)
    try await master.listen(.unix(path))
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    // Until the parent closes our stdin.
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        Thread {
            while FileHandle.standardInput.availableData.count > 0 {}
            done.resume()
        }.start()
    }
    await master.close()
    exit(0)
}

let calls = Int(arguments[3])!
let inflight = Int(arguments[4])!
var options = RPCOptions()
options.heartbeatInterval = nil
let branch = RPCBranch(id: "bench", options: options)
try await branch.connect(to: .unix(path))
let payload = String(repeating: "x", count: 24)  // with the JSON around it, a body of about 50 bytes
let raw = arguments.contains("raw")
let rawBody = ByteBuffer(string: #"{"sequence":1234567,"payload":"xxxxxxxxxxxxxxxxxxxxxxxx"}"#)

@Sendable func worker(_ count: Int, _ offset: Int) async throws -> [UInt64] {
    var latencies = [UInt64]()
    latencies.reserveCapacity(count)
    for i in 0..<count {
        let start = DispatchTime.now().uptimeNanoseconds
        if raw {
            let answer = try await branch.callRaw("raw", body: rawBody, on: nil, timeout: nil)
            precondition(answer.readableBytes == rawBody.readableBytes, "wrong answer")
        } else {
            let answer = try await branch.call(Ping.self, .init(sequence: offset + i, payload: payload))
            precondition(answer == offset + i, "wrong answer")
        }
        latencies.append(DispatchTime.now().uptimeNanoseconds - start)
    }
    return latencies
}

@Sendable func concurrently(_ inflight: Int, each count: Int) async throws -> [UInt64] {
    try await withThrowingTaskGroup(of: [UInt64].self) { group in
        for k in 0..<inflight { group.addTask { try await worker(count, k * 10_000_000) } }
        var all = [UInt64]()
        for try await part in group { all += part }
        return all
    }
}

let onLoop = arguments.contains("loop")
@Sendable func measure(_ count: Int) async throws -> [UInt64] {
    if onLoop {
        return try await withTaskExecutorPreference(branch.executor) { try await concurrently(inflight, each: count) }
    }
    return try await concurrently(inflight, each: count)
}

/// CPU time (user + system) this process has used, in microseconds.
func cpuMicroseconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

_ = try await measure(2000 / inflight + 1)  // warm-up
let cpuStarted = cpuMicroseconds()
let started = DispatchTime.now().uptimeNanoseconds
let perWorker = calls / inflight
let unsorted = try await measure(perWorker)
let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
let latencies = unsorted.sorted()
@MainActor func percentile(_ p: Double) -> Double { Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000 }
let total = perWorker * inflight
print(
    String(
        format: "client=0 rt_per_s=%.0f mean_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.1f max_us=%.0f",
        Double(total) / seconds, latencies.reduce(0.0) { $0 + Double($1) } / Double(total) / 1000, percentile(0.5),
        percentile(0.99), percentile(0.999), percentile(1)))
print(
    String(
        format: "transport=unix inflight=%d calls=%d aggregate_rt_per_s=%.0f client_cpu_us_per_call=%.2f", inflight, total,
        Double(total) / seconds, (cpuMicroseconds() - cpuStarted) / Double(total)))
await branch.close()
exit(0)
