// `ClusterFixture client DIRECTORY NAME BOARD`: a cluster client in free mode whose real client is a connection to
// the board server at BOARD. Driven by lines on stdin; reports on stdout, one line per event, written at once:
//
//   subscribe KEY                  → "value KEY V" for each value, "failed KEY CODE MESSAGE" for each failure
//   unsubscribe KEY                (this process's only local subscriber of KEY goes)
//   publish KEY V                  → "published KEY V" or "error publish CODE MESSAGE"
//   invoke ID add A B [idempotent] [timeout=MS]   → "invoked ID SUM" or "error ID CODE MESSAGE"
//   invoke ID slow MS [idempotent] [timeout=MS]   → "invoked ID MS" (the leader waits MS first)
//   invoke ID fail TEXT            → "error ID 30006 …" (the real client throws)
//   invoke ID raw NAME JSON        → "invoked ID JSON" (by name)
//   current KEY                    → "current KEY V" or "current KEY -"
//   close                          → "closed" (the client is closed; the process stays)
//   threads NAME                   → "threads NAME N": how many of this process's threads are named NAME
//   quit                           (closes the client and exits 0)
//
// and of its own accord: "leading TERM", "following TERM", "lost".
import Foundation
import Octopus

#if canImport(Glibc)
import Glibc
#endif

func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func describe(_ error: any Error) -> String {
    if let error = error as? RPCError { return "\(error.code.rawValue) \(error.message)" }
    return "0 \(error)"
}

func runClientMode(directory: String, name: String, board: String) async -> Never {
    let client = ClusterClient(name: name, logger: Logger(label: "client") { _ in SwiftLogNoOpLogHandler() }) {
        try BoardConnection.connect(board)
    }
    Task {
        for await event in client.events {
            switch event {
            case .leading(let term): say("leading \(term)")
            case .following(let term): say("following \(term)")
            case .leaderLost: say("lost")
            }
        }
    }
    do {
        try await client.start(.free(directory: directory))
    } catch {
        say("start failed: \(error)")
        exit(1)
    }
    var subscriptions: [String: Task<Void, Never>] = [:]
    while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        switch words.first {
        case "subscribe" where words.count == 2:
            let key = words[1]
            let stream = client.subscribe(key)
            subscriptions[key] = Task {
                for await event in stream {
                    switch event {
                    case .value(let value): say("value \(key) \(value)")
                    case .failed(let error): say("failed \(key) \(describe(error))")
                    }
                }
            }
        case "unsubscribe" where words.count == 2:
            subscriptions.removeValue(forKey: words[1])?.cancel()
        case "publish" where words.count == 3:
            let (key, value) = (words[1], words[2])
            Task {
                do {
                    try await client.publish(value, to: key)
                    say("published \(key) \(value)")
                } catch {
                    say("error publish \(describe(error))")
                }
            }
        case "invoke" where words.count >= 3:
            let (id, method) = (words[1], words[2])
            let flags = words.dropFirst(3)
            let idempotent = flags.contains("idempotent")
            let timeout = flags.first { $0.hasPrefix("timeout=") }.flatMap { Int($0.dropFirst(8)) }.map { Duration.milliseconds($0) }
            let arguments = flags.filter { $0 != "idempotent" && !$0.hasPrefix("timeout=") }
            Task {
                do {
                    let answer: String
                    switch method {
                    case "add":
                        let input = AddAction.Input(a: Int(arguments.first ?? "") ?? 0, b: Int(arguments.dropFirst().first ?? "") ?? 0)
                        answer = String(try await client.invoke(AddAction.self, input, idempotent: idempotent, timeout: timeout))
                    case "slow":
                        let ms = Int(arguments.first ?? "") ?? 0
                        answer = String(try await client.invoke(SlowAction.self, ms, idempotent: idempotent, timeout: timeout))
                    case "fail":
                        answer = try await client.invoke(FailAction.self, arguments.first ?? "", idempotent: idempotent, timeout: timeout)
                    default:
                        let json = Data((arguments.dropFirst().first ?? "null").utf8)
                        let data = try await client.invoke(arguments.first ?? "", json: json, idempotent: idempotent, timeout: timeout)
                        answer = String(decoding: data, as: UTF8.self)
                    }
                    say("invoked \(id) \(answer)")
                } catch {
                    say("error \(id) \(describe(error))")
                }
            }
        case "current" where words.count == 2:
            say("current \(words[1]) \(client.current(words[1]) ?? "-")")
        case "close":
            await client.close()
            say("closed")
        case "threads" where words.count == 2:
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            let named = tasks.filter { task in
                let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
                return comm.trimmingCharacters(in: .newlines) == words[1]
            }
            say("threads \(words[1]) \(named.count)")
        case "quit":
            await client.close()
            exit(0)
        default:
            say("unknown command: \(line)")
        }
    }
    await client.close()
    exit(0)
}
