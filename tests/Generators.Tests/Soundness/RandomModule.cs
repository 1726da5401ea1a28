using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace ModelParallel.Generators.Tests.Soundness
{
    /// <summary>
    /// A random [ParallelModule] class: Linear layers with random placements and sizes, and a forward drawn from the
    /// operations the placement walk has rules for and from the mistakes it must refuse (dimensions counted from the
    /// start, size reads, mixed placements, a partial sum used non-linearly, indivisible sizes). Every model is valid on
    /// one device: its shapes fit, so the single-device run is always the reference.
    /// </summary>
    internal sealed class RandomModule
    {
        private static readonly int[] Sizes = { 8, 16, 12, 6 }; // 6: not divisible by tp = 4 (a loud run-time error, or MP0010)
        private static readonly string[] Placements = { "[ColumnParallel] ", "[RowParallel] ", "[RowParallel(ReduceOutput = false)] ", "", "[Replicated] " };

        public const int Features = 8;

        private RandomModule(string name, string source)
        {
            Name = name;
            Source = source;
        }

        public string Name { get; }

        public string Source { get; }

        public static RandomModule Create(int seed)
        {
            var random = new Random(seed);
            var name = $"Case{seed}";
            var fields = new List<string>();
            var builds = new List<string>();
            var body = new List<string>();
            var values = new List<(string Name, int Size)> { ("x", Features) };
            var layers = new List<(string Name, int In, int Out)>();
            var children = new List<string>();
            bool helper = false;
            int steps = random.Next(2, 7);
            for (int step = 0; step < steps; step++)
            {
                // Mostly the latest value, so most operations lie on the path to the output (a dead one proves nothing).
                var (value, size) = random.Next(10) < 7 ? values[^1] : values[random.Next(values.Count)];
                string next = $"h{step}";
                string expression;
                int nextSize = size;
                switch (random.Next(15))
                {
                    case 14:
                    {
                        // A product of two values of this size: a partial sum or a shard by a whole value that needs a
                        // gradient is refused (its gradient would be each rank's share); shards alike and whole values pass.
                        if (random.Next(2) == 0)
                        {
                            // A learned gate: a new whole layer's output, whose weights need their whole gradient.
                            var gate = $"g{fields.Count}";
                            fields.Add($"private readonly Linear {gate};");
                            builds.Add($"{gate} = nn.Linear({Features}, {size});");
                            expression = $"{value} * nn.functional.sigmoid({gate}.forward(x))";
                            break;
                        }
                        var same = values.Where(v => v.Size == size).ToList();
                        var other = same[random.Next(same.Count)];
                        expression = $"{value} * {other.Name}";
                        break;
                    }
                    case 11:
                        // A whole table broadcast over a new last dimension (the rotary pattern), summed back: valid; over
                        // the other dimension, the sum reduces the sharded one (a mistake). Both keep the value itself in the
                        // result: a model whose output is analytically constant compares rounding noise.
                        expression = random.Next(4) switch
                        {
                            0 => $"({value}.unsqueeze(-1) * torch.ones(3)).sum(-2).mean(new long[] {{ -1 }}, keepdim: true) * torch.ones({size}) + {value}",
                            1 => $"{value} * torch.ones({size})", // a whole row that reaches the sharded dimension
                            _ => $"({value}.unsqueeze(-1) * torch.ones(3)).sum(-1)",
                        };
                        break;
                    case 12:
                        // Repeating every column (the GQA pattern) keeps the shard; tiling the row does not.
                        expression = random.Next(3) == 0 ? $"{value}.repeat(1, 2)" : $"{value}.repeat_interleave(2, -1)";
                        nextSize = 2 * size;
                        break;
                    case 13:
                        // The class's own helper method, walked with its argument's placement.
                        helper = true;
                        expression = $"Blend({value})";
                        break;
                    case 10:
                    {
                        // A [ParallelModule] sub-module: its forward returns S(-1) (a ColumnParallel layer last) or R.
                        var child = $"{name}Child{children.Count}";
                        int hidden = Sizes[random.Next(Sizes.Length)];
                        bool sharded = random.Next(2) == 0;
                        children.Add(ChildSource(child, size, hidden, sharded));
                        var field = $"c{children.Count - 1}";
                        fields.Add($"private readonly {child} {field};");
                        builds.Add($"{field} = new {child}();");
                        expression = $"{field}.forward({value})";
                        nextSize = sharded ? hidden : size;
                        break;
                    }
                    case 0 or 1 or 2 or 3:
                    {
                        // A layer call: a new layer, or (sometimes) one already built with a matching input size.
                        var reusable = layers.Where(l => l.In == size).ToList();
                        if (reusable.Count > 0 && random.Next(4) == 0)
                        {
                            var layer = reusable[random.Next(reusable.Count)];
                            expression = $"{layer.Name}.forward({value})";
                            nextSize = layer.Out;
                            break;
                        }
                        var field = $"l{layers.Count}";
                        int output = Sizes[random.Next(Sizes.Length)];
                        fields.Add($"{Placements[random.Next(Placements.Length)]}private readonly Linear {field};");
                        builds.Add($"{field} = nn.Linear({size}, {output}, hasBias: {(random.Next(2) == 0 ? "true" : "false")});");
                        layers.Add((field, size, output));
                        expression = $"{field}.forward({value})";
                        nextSize = output;
                        break;
                    }
                    case 4:
                        expression = $"nn.functional.{(random.Next(2) == 0 ? "gelu" : "relu")}({value})";
                        break;
                    case 5:
                    {
                        var same = values.Where(v => v.Size == size).ToList();
                        var other = same[random.Next(same.Count)];
                        expression = $"{value} + {other.Name}";
                        break;
                    }
                    case 6:
                        expression = $"{value} * 0.5";
                        break;
                    case 7:
                        // softmax over the last dimension, counted from the end or (on this rank-2 value) from the start.
                        expression = random.Next(2) == 0 ? $"nn.functional.softmax({value}, -1)" : $"nn.functional.softmax({value}, 1)";
                        break;
                    case 8:
                        // a size read: the last dimension's (the sharded one after a ColumnParallel layer) or the first's.
                        expression = random.Next(2) == 0 ? $"{value} * (1.0 / {value}.shape[^1])" : $"{value} * (1.0 / {value}.shape[0])";
                        break;
                    default:
                        expression = $"{value} - {value}.mean(new long[] {{ {(random.Next(2) == 0 ? "-1" : "1")} }}, keepdim: true)";
                        break;
                }
                body.Add($"var {next} = {expression};");
                values.Add((next, nextSize));
            }
            body.Add($"return {values[^1].Name};");

            var source = new StringBuilder();
            source.AppendLine("    [ParallelModule]");
            source.AppendLine($"    public sealed partial class {name} : nn.Module<Tensor, Tensor>");
            source.AppendLine("    {");
            foreach (var field in fields) source.AppendLine($"        {field}");
            source.AppendLine($"        public {name}() : base(\"{name}\")");
            source.AppendLine("        {");
            foreach (var build in builds) source.AppendLine($"            {build}");
            source.AppendLine("            RegisterComponents();");
            source.AppendLine("        }");
            source.AppendLine("        public override Tensor forward(Tensor x)");
            source.AppendLine("        {");
            foreach (var line in body) source.AppendLine($"            {line}");
            source.AppendLine("        }");
            if (helper) source.AppendLine("        private static Tensor Blend(Tensor t) => t * 0.5 + nn.functional.relu(t);");
            source.AppendLine("    }");
            foreach (var child in children) source.Append(child);
            return new RandomModule(name, source.ToString());
        }

        /// <summary>A sub-module: ColumnParallel up (in → hidden), then, unless it returns sharded, RowParallel down (hidden → in).</summary>
        private static string ChildSource(string name, int size, int hidden, bool sharded)
        {
            var source = new StringBuilder();
            source.AppendLine("    [ParallelModule]");
            source.AppendLine($"    public sealed partial class {name} : nn.Module<Tensor, Tensor>");
            source.AppendLine("    {");
            source.AppendLine("        [ColumnParallel] private readonly Linear up;");
            if (!sharded) source.AppendLine("        [RowParallel] private readonly Linear down;");
            source.AppendLine($"        public {name}() : base(\"{name}\")");
            source.AppendLine("        {");
            source.AppendLine($"            up = nn.Linear({size}, {hidden});");
            if (!sharded) source.AppendLine($"            down = nn.Linear({hidden}, {size});");
            source.AppendLine("            RegisterComponents();");
            source.AppendLine("        }");
            source.AppendLine(sharded
                ? "        public override Tensor forward(Tensor x) => nn.functional.gelu(up.forward(x));"
                : "        public override Tensor forward(Tensor x) => down.forward(nn.functional.gelu(up.forward(x)));");
            source.AppendLine("    }");
            return source.ToString();
        }
    }
}
