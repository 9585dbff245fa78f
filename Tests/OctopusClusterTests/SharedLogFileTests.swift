import Foundation
import OctopusLog
import OctopusSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several processes writing one rotating file: the agent rolls it, the others reopen before it is archived, and no
/// line is lost, duplicated or split.
@Suite(.serialized) struct SharedLogFileTests {
    /// Every line of `lines` in the order the files were written (rolled files oldest first, then the hot file),
    /// checked: each worker's lines 0..<count, each once, whole, in order.
    func verify(_ lines: [String], workers: Int, count: Int) -> [String] {
        var next = [Int: Int]()
        var problems: [String] = []
        for line in lines {
            let parts = line.split(separator: " ")
            guard parts.count >= 4, parts[0] == "worker", let worker = Int(parts[1]), parts[2] == "line", let n = Int(parts[3]),
                parts.count == 4 || parts[4].allSatisfy({ $0 == "x" })
            else {
                problems.append("not a whole line: \(line.prefix(120))")
                continue
            }
            if next[worker, default: 0] != n { problems.append("worker \(worker): expected line \(next[worker, default: 0]), found \(n)") }
            next[worker] = n + 1
        }
        for worker in 1...workers where next[worker] != count {
            problems.append("worker \(worker): \(next[worker] ?? 0) of \(count) lines")
        }
        if lines.count != workers * count { problems.append("\(lines.count) lines in all, expected \(workers * count)") }
        return problems
    }

    func read(_ path: String) throws -> [String] {
        let bytes = path.hasSuffix(".gz") ? try LogArchive.decompress(path) : Array(FileManager.default.contents(atPath: path) ?? Data())
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// Runs 4 workers logging `count` lines each into `appender`; with `tail`, an `octopus tail -f` started before
    /// them follows the file, and what it printed once they are done is returned.
    func run(appender: String, environment: [String: String], count: Int, tail: Bool = false, name: String = "lines", directory: String = "logs", prefix: String = "lines.log") async throws
        -> (files: [String], scratch: Scratch, log: String, tailed: [String])
    {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 4))
        try scratch.config(
            "log:\n  appenders:\n    \(name): \(appender)\n  categories:\n    fixture: { appenders: [\(name)], level: INFO, inherit: false }\n",
            name: "config.local.yaml")
        var follower: Process?
        if tail {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: octopusBinary)
            process.arguments = ["tail", "-f", "-n", "all", "logs/lines.log"]
            process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
            _ = FileManager.default.createFile(atPath: scratch.path + "/tail.out", contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.path + "/tail.out"))
            _ = FileManager.default.createFile(atPath: scratch.path + "/tail.err", contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.path + "/tail.err"))
            try process.run()
            follower = process
        }
        defer {
            if let follower {
                follower.terminate()
                follower.waitUntilExit()
            }
        }
        var log = ""
        try await withCluster(scratch, environment: environment.merging(["FIXTURE_LOG_STREAM": "\(count)"]) { $1 }) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await waitUntil(within: .seconds(120)) { scratch.lines("logged.txt").count == 4 }, "\(cluster.log)")
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
            log = cluster.log
        }
        let names = (try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/" + directory)).filter { $0.hasPrefix(prefix) }
        var tailed: [String] = []
        if tail {
            _ = await waitUntil(within: .seconds(60)) { scratch.lines("tail.out").count >= 4 * count }
            tailed = scratch.lines("tail.out")
        }
        return (names, scratch, log, tailed)
    }

    @Test func fourWorkersWriteOneFileRolledBySizeAndEveryLineIsKeptOnceInOrder() async throws {
        let count = 50_000
        let (names, scratch, log, tailed) = try await run(
            appender: "{ type: file, filename: logs/lines.log, maxLogSize: 1M, backups: 100, compress: true, layout: { type: messagePassThrough } }",
            environment: ["FIXTURE_LOG_PAD": "80"], count: count, tail: true)
        // lines.log.N.gz, N = 1 the newest: read the highest index first, the hot file last.
        let rolled = names.compactMap { name -> (Int, String)? in
            let parts = name.split(separator: ".")
            guard name.hasSuffix(".gz"), parts.count == 4, let index = Int(parts[2]) else { return nil }
            return (index, name)
        }.sorted { $0.0 > $1.0 }
        // How many rolls ~20 MB make depends on timing: every process appends until it is told to reopen, so a file
        // grows past 1M for as long as its roll takes (9–13 rolled files in CI's runs, ~2 MB each). Whatever the
        // timing: several rolls, and each rolled file past its size (the owner rolls only a file that is, so a
        // second request for a roll already made rolls nothing).
        #expect(rolled.count >= 3, "\(names.sorted())")
        #expect(!names.contains { $0.contains("rolling") || $0.contains(".tmp") }, "\(names)")
        var lines: [String] = []
        for (_, name) in rolled {
            let content = try read(scratch.path + "/logs/" + name)
            let bytes = content.reduce(0) { $0 + $1.utf8.count + 1 }
            #expect(bytes > 1 << 20, "\(name): \(bytes) bytes, rolled before it passed maxLogSize")
            lines += content
        }
        lines += try read(scratch.path + "/logs/lines.log")
        let problems = verify(lines, workers: 4, count: count)
        #expect(problems.isEmpty, "\(problems.prefix(10))")
        #expect(!log.contains("did not reopen"), "\(log)")
        print("size rolls: \(rolled.count) rolled files, \(lines.count) lines")
        // `octopus tail -f`, started before the workers, printed every line once, in the files' order.
        let tailProblems = verify(tailed, workers: 4, count: count)
        #expect(tailProblems.isEmpty, "tail -f: \(tailProblems.prefix(10))")
        #expect(tailed == lines, "tail -f printed the lines in another order than the files hold them")
    }

    @Test func fourWorkersWriteOneFileRolledByDateAndEveryLineIsKeptOnceInOrder() async throws {
        let count = 50_000
        // A period of one second, so that the test sees several rolls in a few seconds.
        let (names, scratch, log, _) = try await run(
            appender: "{ type: dateFile, filename: logs/lines.log, pattern: yyyy-MM-dd-hh-mm-ss, numBackups: 1000, compress: true, layout: { type: messagePassThrough } }",
            environment: ["FIXTURE_LOG_SPREAD_MS": "60"], count: count)
        let rolled = names.filter { $0.hasSuffix(".gz") }.sorted()
        #expect(rolled.count >= 2, "\(names.sorted())")
        #expect(!names.contains { $0.contains("rolling") || $0.contains(".tmp") }, "\(names)")
        var lines: [String] = []
        for name in rolled { lines += try read(scratch.path + "/logs/" + name) }
        lines += try read(scratch.path + "/logs/lines.log")
        let problems = verify(lines, workers: 4, count: count)
        #expect(problems.isEmpty, "\(problems.prefix(10))")
        #expect(!log.contains("did not reopen"), "\(log)")
        print("date rolls: \(rolled.count) rolled files, \(lines.count) lines")
    }

    @Test func fourWorkersWriteAMultiFileAppenderAndTheAgentRollsFilesItNeverWrote() async throws {
        let count = 20_000
        // One file per worker (the `worker` metadata every worker line carries); only workers write them, so the agent
        // opens each when a worker asks it to roll it. A roll is asked for once the size has passed and done by the
        // agent a little later, so a file can grow past the size meanwhile (by what the worker writes while the roll
        // is under way); the pauses (10 ms every 1,000 lines, about 100K) keep that small, so that each worker's 2M
        // makes several rolls, each of a file past its size.
        let (names, scratch, log, _) = try await run(
            appender: "{ type: multiFile, base: logs/multi, property: worker, extension: .log, maxLogSize: 256K, backups: 100, compress: true, layout: { type: messagePassThrough } }",
            environment: ["FIXTURE_LOG_PAD": "80", "FIXTURE_LOG_SPREAD_MS": "10"], count: count, name: "multi",
            directory: "logs/multi", prefix: "")
        var lines: [String] = []
        for worker in 1...4 {
            let rolled = names.compactMap { name -> (Int, String)? in
                let parts = name.split(separator: ".")
                guard parts.first == "\(worker)", name.hasSuffix(".gz"), parts.count == 4, let index = Int(parts[2]) else { return nil }
                return (index, name)
            }.sorted { $0.0 > $1.0 }
            #expect(rolled.count >= 2, "worker \(worker): \(names.sorted())")
            for (_, name) in rolled {
                let content = try read(scratch.path + "/logs/multi/" + name)
                let bytes = content.reduce(0) { $0 + $1.utf8.count + 1 }
                #expect(bytes > 256 << 10, "\(name): \(bytes) bytes, rolled before it passed maxLogSize")
                lines += content
            }
            lines += try read(scratch.path + "/logs/multi/\(worker).log")
        }
        #expect(!names.contains { $0.contains("rolling") || $0.contains(".tmp") }, "\(names)")
        let problems = verify(lines, workers: 4, count: count)
        #expect(problems.isEmpty, "\(problems.prefix(10))")
        #expect(!log.contains("did not reopen"), "\(log)")
    }
}
