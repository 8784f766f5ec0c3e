import Foundation
import Yams
import ModelSyncGenerator
print("benchmarks")
let generator = try runGeneratorBenchmark(quick: false)
print("generator", generator.oursMs, generator.baselineMs, generator.oursMs / generator.baselineMs)
do {
    let spec = syntheticSpec(models: 500)
    var t = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<3 { _ = try Yams.compose(yaml: spec) }
    print("compose", Double(DispatchTime.now().uptimeNanoseconds - t) / 3e6)
    t = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<3 { _ = ModelSyncGenerator.validate([SpecSource(path: "x", text: spec)]) }
    print("validate", Double(DispatchTime.now().uptimeNanoseconds - t) / 3e6)
}
