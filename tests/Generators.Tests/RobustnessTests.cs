using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>Unusual and broken sources give diagnostics or valid output, never a generator exception.</summary>
    [Trait("Category", "Generator")]
    public sealed class RobustnessTests
    {
        [Theory]
        [InlineData("[ParallelModule] public partial class Empty { }")]
        [InlineData("[ParallelModule] public partial class Generic<T> : nn.Module<Tensor, Tensor> { [ColumnParallel] Linear up = nn.Linear(2, 4); public Generic() : base(\"g\") { } public override Tensor forward(Tensor x) => up.forward(x); }")]
        [InlineData("[ParallelModule] public partial class Broken : nn.Module<Tensor, Tensor> { [ColumnParallel] Linear up; public Broken() : base(\"b\") { up = nn.Linear(2, ; } public override Tensor forward(Tensor x) => up.forward(x) }")]
        [InlineData("[ParallelModule] public partial struct NotAClass { }")]
        [InlineData("[ParallelModule] public partial class UsesUnknown : nn.Module<Tensor, Tensor> { [RowParallel] Missing down; public UsesUnknown() : base(\"u\") { } public override Tensor forward(Tensor x) => down.forward(x); }")]
        [InlineData("[ParallelModule] public partial class Twice : nn.Module<Tensor, Tensor> { [ColumnParallel] Linear up; public Twice() : base(\"t\") { up = nn.Linear(2, 4); up = nn.Linear(2, 4); } public override Tensor forward(Tensor x) => up.forward(up.forward(x)); }")]
        [InlineData("[ParallelModule] public partial class Lambda : nn.Module<Tensor, Tensor> { [ColumnParallel] Linear up; public Lambda() : base(\"l\") { up = nn.Linear(2, 4); } public override Tensor forward(Tensor x) { System.Func<Tensor, Tensor> f = t => up.forward(t); return f(x); } }")]
        public void NeverThrows(string body)
        {
            var (result, _) = GeneratorHarness.Run(("Odd.cs", Samples.Usings + "namespace Sample {\n" + body + "\n}\n"));
            Assert.Null(result.Exception);
        }
    }
}
