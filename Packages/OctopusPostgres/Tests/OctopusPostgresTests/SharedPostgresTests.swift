import Foundation
import Logging
import Octopus
import OctopusPostgres
import PostgresNIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The server the tests use: `OCTOPUS_TEST_POSTGRES=postgres://USER@HOST:PORT/DATABASE` (`.ci/run` starts a throw-away
/// one and sets it). Without it a test fails in CI (`CI` set) and is skipped elsewhere, saying how to start one.
let serverURL = ProcessInfo.processInfo.environment["OCTOPUS_TEST_POSTGRES"]
let howToStart = """
    these tests need a PostgreSQL server: set OCTOPUS_TEST_POSTGRES=postgres://USER@HOST:PORT/DATABASE, or start a \
    throw-away one as .ci/run does (apt-get install postgresql; Packages/OctopusPostgres/test-server.sh start)
    """

func serverConfiguration() -> PostgresConnection.Configuration? {
    guard let serverURL, let url = URLComponents(string: serverURL), let host = url.host else {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("OCTOPUS_TEST_POSTGRES is not set: \(howToStart)")
        } else {
            print("skipped: \(howToStart)")
        }
        return nil
    }
    return PostgresConnection.Configuration(
        host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
        database: String(url.path.dropFirst()).isEmpty ? nil : String(url.path.dropFirst()), tls: .disable)
}

let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

/// An error whose description is the full one (PSQLError hides its details from `description`).
struct PrintableError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds; false after `limit` (no test passes or fails on how fast something is).
func waitUntil(within limit: Duration = .seconds(60), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let end = ContinuousClock.now + limit
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The fixture application started in a scratch directory; ended (by pid) by the test that started it.
final class FixtureCluster: @unchecked Sendable {
    let directory: String
    let process = Process()

    init(workers: Int, environment: [String: String]) throws {
        directory = "/tmp/ocpg-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory + "/config", withIntermediateDirectories: true)
        try """
        log:
          appenders:
            file: { type: file, filename: logs/app.log }
          categories:
            default: { appenders: [file], level: INFO }
        cluster:
          workers: \(workers)
          startupTimeout: 30s
          shutdownTimeout: 5s
          restartBackoff: { initial: 50ms, maximum: 400ms }
        """.write(toFile: directory + "/config/config.default.yaml", atomically: true, encoding: .utf8)
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("PostgresFixture")
        process.executableURL = binary
        process.arguments = ["start"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
    }

    func lines(_ name: String) -> [String] {
        ((try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// SIGTERM to the master, SIGKILL after 30 s; the master ends its children.
    func end() async {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            if !(await waitUntil(within: .seconds(30)) { !process.isRunning }) {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        if ProcessInfo.processInfo.environment["OCTOPUS_KEEP_SCRATCH"] == nil { try? FileManager.default.removeItem(atPath: directory) }
    }
}

@Suite("PostgreSQL as a cluster's one long connection", .serialized)
struct SharedPostgresTests {
    @Test("4 workers, one server connection; every NOTIFY reaches every worker; the agent's replacement connects and LISTENs again")
    func oneConnectionForTheCluster() async throws {
        guard let configuration = serverConfiguration() else { return }
        let observer: PostgresConnection
        do {
            observer = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: quiet)
        } catch {
            Issue.record("cannot connect to \(serverURL ?? "?"): \(String(reflecting: error)); \(howToStart)")
            return
        }
        let name = "octopus-test-\(UUID().uuidString.prefix(8))"
        func backends() async throws -> [Int] {
            let rows = try await observer.query("SELECT pid FROM pg_stat_activity WHERE application_name = \(name)", logger: quiet)
            var pids: [Int] = []
            for try await row in rows { pids.append(try row.decode(Int.self)) }
            return pids
        }
        func notify(_ payload: String) async throws {
            try await observer.query("SELECT pg_notify('news', \(payload))", logger: quiet)
        }
        let cluster = try FixtureCluster(
            workers: 4, environment: ["OCTOPUS_TEST_POSTGRES": serverURL ?? "", "FIXTURE_APPLICATION_NAME": name])
        do {
            func heard(_ tag: String) -> Set<String> {
                Set(cluster.lines("news.log").filter { $0.contains(" \(tag)") }.map { String($0.split(separator: " ")[1]) })
            }
            /// NOTIFYs sent before a worker's LISTEN was in force are nobody's: probe until every worker hears one.
            func probeUntilEveryWorkerHears(_ tag: String) async throws -> Bool {
                var n = 0
                return try await waitUntil {
                    n += 1
                    try await notify("\(tag)\(n)")
                    return heard(tag).count == 4
                }
            }

            // Each worker queried through the agent's connection.
            #expect(await waitUntil { cluster.lines("news.log").filter { $0.hasSuffix(" query answer=int(42)") }.count == 4 },
                    "\(cluster.lines("news.log"))")
            #expect(try await probeUntilEveryWorkerHears("probe"))
            let first = try await backends()
            #expect(first.count == 1, "one connection to the server for the whole cluster: \(first)")

            for i in 1...10 { try await notify("v\(i)") }
            for worker in 1...4 {
                #expect(await waitUntil { cluster.lines("news.log").filter { $0.hasPrefix("worker \(worker) v") }.count == 10 })
                #expect(cluster.lines("news.log").filter { $0.hasPrefix("worker \(worker) v") } == (1...10).map { "worker \(worker) v\($0)" })
            }

            // The agent dies: its connection goes with it; the replacement connects once and LISTENs for everyone.
            let agent = try #require(cluster.lines("agent.pid").last.flatMap { Int32($0) })
            kill(agent, SIGKILL)
            #expect(try await waitUntil { let now = try await backends(); return now.count == 1 && now != first })
            #expect(try await probeUntilEveryWorkerHears("after"))
            #expect(try await backends().count == 1)
        } catch {
            await cluster.end()
            try? await observer.close()
            throw error
        }
        await cluster.end()
        // At the stop the agent closed its connection.
        #expect(try await waitUntil { try await backends().isEmpty })
        try? await observer.close()
    }

    @Test("One process: LISTEN, publish through pg_notify, a query with parameters, and a bad query's error with the server's message")
    func inOneProcess() async throws {
        guard let configuration = serverConfiguration() else { return }
        let client = ClusterClient(name: "postgres", logger: quiet) {
            try await PostgresSharedConnection.connect(configuration, applicationName: "octopus-test-single")
        }
        try await client.start(.single)
        do {
            let channel = "single_\(UUID().uuidString.prefix(8).lowercased())"
            let events = client.subscribe(channel)
            let received = Task { () -> [String] in
                var values: [String] = []
                for await event in events {
                    if case .value(let value) = event { values.append(value) }
                    if values.count == 2 { break }
                }
                return values
            }
            // subscribe returns at once; the LISTEN is in force once a publish comes back.
            var n = 0
            while client.current(channel) == nil, n < 500 {
                n += 1
                try await client.publish("warm", to: channel)
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(client.current(channel) == "warm")
            try await client.publish("hello, 'world'", to: channel)
            let values = await received.value
            #expect(values.last == "hello, 'world'")

            let result = try await client.invoke(
                PostgresSharedConnection.Query.self,
                .init("SELECT $1::int * 2 AS doubled, $2::text AS name, NULL::int AS nothing, true AS yes", [.int(21), .text("x")]))
            #expect(result.columns == ["doubled", "name", "nothing", "yes"])
            #expect(result.rows == [[.int(42), .text("x"), .null, .bool(true)]])
            do {
                _ = try await client.invoke(PostgresSharedConnection.Query.self, .init("SELEC 1"))
                Issue.record("a bad query succeeded")
            } catch let error as RPCError {
                #expect(error.code == .remote)
                #expect(error.message == #"PostgreSQL error 42601: syntax error at or near "SELEC""#, "\(error)")
            }
        } catch {
            await client.close()
            throw PrintableError(String(reflecting: error))
        }
        await client.close()
    }
}
