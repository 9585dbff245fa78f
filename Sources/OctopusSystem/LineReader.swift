import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads a pipe on a thread of its own and hands over each line (without its newline) as it completes; the last line
/// even without one. Closes the descriptor at its end.
package enum LineReader {
    /// - Parameter passThrough: every byte read is also written to this descriptor as it comes (a child's stderr
    ///   going on to this process's).
    /// - Returns: a task that ends when the pipe has ended (every writer gone).
    package static func start(
        _ fd: Int32, passThrough: Int32? = nil, _ emit: @escaping @Sendable (String) -> Void
    ) -> Task<Void, Never> {
        let done = ResumeOnce<Void>()
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if let passThrough { writeAll(passThrough, buffer[0..<n]) }
                pending.append(contentsOf: buffer[0..<n])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    emit(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { emit(String(decoding: pending, as: UTF8.self)) }
            close(fd)
            done.resume(())
        }
        thread.stackSize = 128 * 1024
        thread.start()
        return Task { await done.value }
    }

    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
