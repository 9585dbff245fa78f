import Foundation
import Testing

/// The README's Swift examples are compiled: each block is a whole file of `Tests/ReadmeExamples` (an executable
/// target `swift build` builds). This holds the two to the same text, so that an edit to either shows here.
@Suite struct ReadmeTests {
    @Test func everySwiftBlockOfTheReadmeIsACompiledFileVerbatim() throws {
        let root = repositoryRoot
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```swift" {
                current = []
            } else if let lines = current, line.hasPrefix("```") {
                blocks.append(lines.joined(separator: "\n") + "\n")
                current = nil
            } else {
                current?.append(line)
            }
        }
        let directory = root.appendingPathComponent("Tests/ReadmeExamples")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".swift") }
        var files: [String: String] = [:]
        for name in names { files[name] = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) }
        #expect(blocks.count >= 6, "the README's Swift examples were found")
        for (index, block) in blocks.enumerated() {
            #expect(files.values.contains(block), "README Swift block \(index + 1) (starting \(block.prefix(60).debugDescription)) is not a file of Tests/ReadmeExamples: copy it there, or the file to the README")
        }
        let shown = Set(files.filter { blocks.contains($0.value) }.keys)
        #expect(Set(names).subtracting(shown) == ["Support.swift"], "every example file is shown in the README")
    }
}
