using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace ModelParallel.Generators.Tests.Soundness
{
    /// <summary>
    /// A corpus of partition mistakes in the five classes the soundness issue names (guessing where the walk cannot see,
    /// module boundaries, containers, rank-dependent control flow, direct parameter use), several taken from bugs in the
    /// Python systems' trackers. Each compiles to exactly one diagnostic, at the marked span: none trains silently wrong.
    /// The mistakes refused at run time instead (sizes only known then) are in the runtime tests.
    /// </summary>
    [Trait("Category", "Soundness")]
    public sealed class MistakeCorpusTests
    {
        /// <summary>class, name, forward body (with [| |] around the expected span), other members, other classes, expected ID.</summary>
        public static IEnumerable<object[]> Mistakes() => Corpus.Select(m => new object[] { m.Class, m.Name });

        private sealed record Mistake(int Class, string Name, string Body, string Id, string Members = "", string Types = "");

        private static readonly Mistake[] Corpus =
        {
            // 1. Guessing where it cannot see: dimensions from the start on values of unknown rank, size reads, lost shard positions.
            new(1, "softmax over a dimension from the start", "return down.forward([|up.forward(x).softmax(2)|]);", "MP0014"),
            new(1, "sum over a dimension from the start", "return down.forward([|up.forward(x).sum(1)|]);", "MP0014"),
            new(1, "chunk along a dimension from the start", "var parts = [|up.forward(x).chunk(3, 2)|]; return down.forward(parts[0]);", "MP0014"),
            new(1, "size read of the sharded last dimension", "var h = up.forward(x); var n = [|h.shape[^1]|]; return down.forward(h) * n;", "MP0014"),
            new(1, "size read from the start on unknown rank", "var h = up.forward(x); var n = [|h.shape[1]|]; return down.forward(h) * n;", "MP0014"),
            new(1, "size() of the sharded dimension", "var h = up.forward(x); var n = [|h.size(-1)|]; return down.forward(h) * n;", "MP0014"),
            new(1, "the whole shape of a sharded value", "var h = up.forward(x); var shape = [|h.shape|]; return down.forward(h) * shape[0];", "MP0014"),
            new(1, "functional softmax from the start", "return down.forward([|nn.functional.softmax(up.forward(x), 1)|]);", "MP0014"),
            new(1, "cat from the start", "var h = up.forward(x); return down.forward([|torch.cat(new[] { h, h }, 1)|]);", "MP0014"),
            new(1, "softmax over a shard moved by a reduction", "var h = up.forward(x).view(2, 3, 4, 2).sum(-1); var s = [|h.softmax(-1)|]; return down.forward(s);", "MP0011"),
            new(1, "transpose with dimensions that are not constants", "int a = 0, b = 1; return down.forward([|up.forward(x).transpose(a, b)|]);", "MP0014"),
            new(1, "squeeze of a sharded value without a dimension", "return down.forward([|up.forward(x).squeeze()|]);", "MP0014"),
            new(1, "unsqueeze from the start on unknown rank", "return down.forward([|up.forward(x).unsqueeze(1)|].squeeze(-2));", "MP0014"),
            new(1, "keepdim that is not a constant", "bool keep = x.numel() > 4; var h = up.forward(x).view(2, 4, 4); return [|h.mean(new long[] { -1 }, keepdim: keep)|];", "MP0014"),
            new(1, "numel of a shard", "var h = up.forward(x); return down.forward(h) * [|h.numel()|];", "MP0014"),
            new(1, "item of a shard", "var h = up.forward(x); var first = [|h.item<float>()|]; return down.forward(h) * first;", "MP0014"),
            new(1, "layer norm over a sharded last dimension (Megatron's row-parallel norm bug)", "return [|norm.forward(up.forward(x))|];", "MP0011"),

            // 2. Module boundaries: what a sub-module returns is its own walk's result, not R.
            new(2, "a sub-module's S(-1) output into a norm", "return [|norm.forward(head.forward(x))|];", "MP0011", Members: "private readonly Head head = new();", Types: Head),
            new(2, "a sub-module's S(-1) output added to a whole value", "return [|head.forward(x) + x|];", "MP0014", Members: "private readonly Head head = new();", Types: Head),
            new(2, "a sub-module's S(-1) output through call added to a whole value", "return [|head.call(x) + x|];", "MP0014", Members: "private readonly Head head = new();", Types: Head),
            new(2, "a two-input sub-module's S(-1) output added to a whole value", "return [|pair.forward(x, x) + x|];", "MP0014", Members: "private readonly Pair pair = new();", Types: Pair),
            new(2, "a shard as a sub-module's second input", "return down.forward([|pair.forward(x, up.forward(x))|]);", "MP0014", Members: "private readonly Pair pair = new();", Types: Pair),
            new(2, "a sharded sub-module's forward as a method group", "System.Func<Tensor, Tensor> f = [|head.forward|]; return f(x) + x;", "MP0004", Members: "private readonly Head head = new();", Types: Head),
            new(2, "a sub-module that returns S(-1) on one path and R on another", "return down.forward([|mixed.forward(x)|]);", "MP0014", Members: "private readonly Mixed mixed = new();", Types: Mixed),
            new(2, "a partial sum into a sub-module", "return [|head.forward(partial.forward(up.forward(x)))|];", "MP0012", Members: "private readonly Head head = new();", Types: Head),
            new(2, "a shard into a [ParallelModule] sub-module", "return down.forward([|head.forward(up.forward(x))|]);", "MP0014", Members: "private readonly Head head = new();", Types: Head),
            new(2, "a helper returning differently placed values", "return down.forward([|Pick(x)|]);", "MP0014", Members: "private Tensor Pick(Tensor t) { if (t.numel() > 4) return up.forward(t); return t; }"),
            new(2, "a helper reached with two placements", "var a = Split(x); var b = Split(up.forward(x)); return down.forward(b.view(2, 8)) + a.view(2, 8);", "MP0014",
                Members: "private static Tensor Split(Tensor t) => [|t.view(2, 4, 2)|];"),
            new(2, "a shard carried out of a helper in a tuple", "var (h, _) = Pair(x); return down.forward(h);", "MP0014",
                Members: "private (Tensor, Tensor) Pair(Tensor t) => [|(up.forward(t), t)|];"),
            new(2, "a shard deconstructed from a written tuple", "var (h, y) = (up.forward(x), x); return [|h + y|];", "MP0014"),
            new(2, "a sharded result used as a whole by plain code", "return up.forward(x);", "MP0019",
                Types: "public static class Use { public static Tensor Loss(Block b, Tensor x, Tensor y) => nn.functional.mse_loss([|b.forward(x)|], y); }"),

            // 3. Containers: partitioned layers called where the interceptors never see them.
            new(3, "a partitioned layer in nn.Sequential", "var seq = nn.Sequential([|up|]); return down.forward(seq.forward(x));", "MP0004"),
            new(3, "a partitioned layer passed to a helper", "return Apply([|up|], x);", "MP0004", Members: "private static Tensor Apply(Linear l, Tensor t) => l.forward(t);"),
            new(3, "a partitioned layer through a local", "var layer = [|up|]; return down.forward(layer.forward(x));", "MP0004"),
            new(3, "a partitioned layer through call", "return down.forward([|up.call(x)|]);", "MP0004"),
            new(3, "a partitioned layer's forward as a method group", "System.Func<Tensor, Tensor> f = [|up.forward|]; return down.forward(f(x));", "MP0004"),
            new(3, "a Dropout module on a sharded value", "return down.forward([|drop.forward(up.forward(x))|]);", "MP0014", Members: "private readonly Dropout drop = nn.Dropout(0.1);"),
            new(3, "a partitioned layer called inside a lambda", "System.Func<Tensor, Tensor> g = [|t => up.forward(t)|]; return g(x) + x;", "MP0014"),
            new(3, "a lambda that makes a local of forward a shard", "var h = x; System.Action g = [|() => h = up.forward(x)|]; g(); return h + x;", "MP0014"),
            new(3, "a shard captured by a lambda", "var h = up.forward(x); System.Func<Tensor> g = () => [|h|] * 2; return g() + x;", "MP0014"),
            new(3, "a partitioned layer called inside a local function", "[|Tensor G(Tensor t) => up.forward(t);|] return G(x) + x;", "MP0014"),
            new(3, "a partitioned layer in a ModuleList", "var list = nn.ModuleList<nn.Module<Tensor, Tensor>>([|up|]); return down.forward(list[0].forward(x));", "MP0004"),

            // 4. Rank-dependent control flow: branches and loops whose partition depends on data or the rank.
            new(4, "a branch on the rank around a layer (NCCL hang reports)", "return [|RankContext.Current!.Rank|] == 0 ? down.forward(up.forward(x)) : x;", "MP0017"),
            new(4, "a size from the rank context", "var n = [|RankContext.Current!.Mesh|].Tp; return down.forward(up.forward(x)) * n;", "MP0017"),
            new(4, "branches that leave a value placed differently", "var h = x; [|if (x.numel() > 4) h = up.forward(x);|] return down.forward(h);", "MP0014"),
            new(4, "a loop whose first pass changes a placement", "var h = x; [|for (int i = 0; i < 2; i++) h = up.forward(h);|] return down.forward(h);", "MP0014"),
            new(4, "a conditional expression choosing a placement", "var h = [|x.numel() > 4 ? up.forward(x) : x|]; return down.forward(h);", "MP0014"),
            new(4, "a pattern variable the walk cannot follow", "var h = up.forward(x); object o = h; if (o is Tensor t) return down.forward([|t|]); return x;", "MP0014"),
            new(4, "a shard kept in a field across calls", "[|stash = up.forward(x)|]; return down.forward(stash);", "MP0014", Members: "private Tensor stash = torch.zeros(1);"),

            // 5. Direct parameter use and partial sums used as whole values.
            new(5, "a functional linear over a column weight", "return nn.functional.linear(x, [|up.weight|]!);", "MP0018"),
            new(5, "a row bias added by hand", "return down.forward(up.forward(x)) + [|down.bias|]!;", "MP0018"),
            new(5, "a weight tied to a column layer", "return down.forward(up.forward(x));", "MP0018", Members: "private void Tie(Linear other) => other.weight = [|up.weight|];"),
            new(5, "a whole row that reaches the sharded dimension", "return down.forward([|up.forward(x) * torch.ones(8)|]);", "MP0014"),
            new(5, "a replicated parameter of unknown rank scaling a shard", "return down.forward([|up.forward(x) * scale|]);", "MP0014"),
            new(5, "a whole value that needs a gradient broadcast over sharded heads", "var q = up.forward(x).view(2, 4, 2).transpose(0, 1); var table = scale.view(4, 2); return down.forward(([|q * table|]).transpose(0, 1).reshape(2, 8));", "MP0014"),
            new(5, "a learned table through outer broadcast over sharded heads", "var q = up.forward(x).view(2, 4, 2).transpose(0, 1); var table = torch.outer(scale.narrow(0, 0, 4), torch.ones(2)); return down.forward(([|q * table|]).transpose(0, 1).reshape(2, 8));", "MP0014"),
            new(5, "a partial sum scaled by a learned parameter", "return down.forward(up.forward([|partial.forward(up.forward(x)) * scale|]));", "MP0012"),
            new(5, "a partial sum through matmul with a learned matrix", "return down.forward(up.forward([|partial.forward(up.forward(x)).matmul(scale.view(8, 1).expand(8, 8))|]));", "MP0012"),
            new(5, "a shard through outer", "var h = up.forward(x); var o = [|torch.outer(h, torch.ones(2))|]; return down.forward(h);", "MP0014"),
            new(5, "a whole value added to a partial sum (bias added on every rank)", "return down.forward(up.forward([|partial.forward(up.forward(x)) + x|]));", "MP0012"),
            new(5, "a constant divided by a partial sum", "return down.forward(up.forward([|2.0 / partial.forward(up.forward(x))|]));", "MP0012"),
            new(5, "a partial sum through matmul, returned", "var eye = torch.eye(8); return [|partial.forward(up.forward(x)).matmul(eye)|];", "MP0013"),
            new(5, "a partial sum into attention", "var p = partial.forward(up.forward(x)).view(2, 1, 4, 8); return [|nn.functional.scaled_dot_product_attention(p, p, p)|].view(8, 8);", "MP0012"),
            new(5, "a partial sum through a nonlinearity", "return down.forward(up.forward([|nn.functional.gelu(partial.forward(up.forward(x)))|]));", "MP0012"),
        };

        private const string Head = """
            [ParallelModule]
            public sealed partial class Head : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear proj;
                public Head() : base("Head") { proj = nn.Linear(8, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => proj.forward(x);
            }
            """;

        private const string Pair = """
            [ParallelModule]
            public sealed partial class Pair : nn.Module<Tensor, Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear proj;
                public Pair() : base("Pair") { proj = nn.Linear(8, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x, Tensor y) => proj.forward(x + y);
            }
            """;

        private const string Mixed = """
            [ParallelModule]
            public sealed partial class Mixed : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear proj;
                public Mixed() : base("Mixed") { proj = nn.Linear(8, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    if (x.numel() > 8) return proj.forward(x);
                    return x;
                }
            }
            """;

        [Fact]
        public void TheCorpusHasAtLeastFortyMistakesInEveryClass()
        {
            Assert.True(Corpus.Length >= 40, $"{Corpus.Length} mistakes");
            Assert.All(Enumerable.Range(1, 5), c => Assert.True(Corpus.Count(m => m.Class == c) >= 5, $"class {c}"));
            Assert.Equal(Corpus.Length, Corpus.Select(m => m.Name).Distinct().Count());
        }

        [Theory]
        [MemberData(nameof(Mistakes))]
        public void EachMistakeIsOneDiagnosticAtItsSpan(int @class, string name)
        {
            var mistake = Corpus.Single(m => m.Class == @class && m.Name == name);
            var markup = $$"""
                [ParallelModule]
                public sealed partial class Block : nn.Module<Tensor, Tensor>
                {
                    [ColumnParallel] private readonly Linear up;
                    [RowParallel] private readonly Linear down;
                    [RowParallel(ReduceOutput = false)] private readonly Linear partial;
                    private readonly LayerNorm norm;
                    private readonly Parameter scale;
                    {{mistake.Members}}
                    public Block() : base("Block")
                    {
                        up = nn.Linear(8, 8); down = nn.Linear(8, 8); partial = nn.Linear(8, 8);
                        norm = nn.LayerNorm(8); scale = new Parameter(torch.ones(8));
                        RegisterComponents();
                    }
                    public override Tensor forward(Tensor x)
                    {
                        {{mistake.Body}}
                    }
                }
                {{mistake.Types}}
                """;
            var prefix = Samples.Usings + "namespace Sample {\n";
            int start = markup.IndexOf("[|", System.StringComparison.Ordinal), end = markup.IndexOf("|]", System.StringComparison.Ordinal) - 2;
            var source = prefix + markup.Replace("[|", "").Replace("|]", "") + "\n}\n";
            var diagnostics = GeneratorHarness.Analyze(("Block.cs", source));
            var diagnostic = Assert.Single(diagnostics);
            Assert.Equal(mistake.Id, diagnostic.Id);
            Assert.Equal(new TextSpan(prefix.Length + start, end - start), diagnostic.Location.SourceSpan);
        }
    }
}
