using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;

namespace ModelParallel
{
    /// <summary>
    /// Refuses a run whose model the generator never partitioned. A <c>[ParallelModule]</c> class compiled without
    /// the generator (the package's analyzer not referenced, a compiler older than the generator needs) builds and
    /// runs the plain single-device layers on every rank: no error, the whole model everywhere, wrong numbers with
    /// data parallelism. The generator makes every such class implement <see cref="IPartitionedModule"/>, so its
    /// absence is the proof that the partition is missing.
    /// </summary>
    internal static class PartitionCheck
    {
        private static readonly ConcurrentDictionary<Assembly, string?> verdicts = new();

        private static readonly Type[] shardingAttributes =
        {
            typeof(ColumnParallelAttribute), typeof(RowParallelAttribute), typeof(VocabParallelAttribute),
            typeof(PipelineStagesAttribute), typeof(FirstStageAttribute), typeof(LastStageAttribute),
        };

        /// <summary>
        /// Throws a <see cref="PartitionException"/> when the assembly holding the run's body, or one it references that
        /// uses ModelParallel, has a partitioned type without its generated partition. Checked once per calling assembly; a
        /// mesh of one rank is the single-device model, which needs no partition.
        /// </summary>
        public static void ThrowIfUnpartitioned(Assembly caller, MeshShape mesh)
        {
            if (mesh.World == 1) return;
            var problem = verdicts.GetOrAdd(caller, c => UsersOfModelParallel(c).Select(Inspect).FirstOrDefault(p => p is not null));
            if (problem is not null)
                throw new PartitionException($"{problem} Refusing to run the {mesh}: every rank would train the whole unsharded model.");
        }

        /// <summary>The first type of the assembly that is marked for partitioning but has no generated partition, described; null if none.</summary>
        internal static string? Inspect(Assembly assembly)
        {
            foreach (var type in LoadableTypes(assembly))
            {
                bool marked = type.IsDefined(typeof(ParallelModuleAttribute), inherit: false);
                if (marked && !typeof(IPartitionedModule).IsAssignableFrom(type))
                    return $"Type '{type.FullName}' is marked [ParallelModule] but has no generated partition (it does not implement IPartitionedModule): "
                        + $"the ModelParallel generator did not run on assembly '{assembly.GetName().Name}'. "
                        + "Reference the ModelParallel package (its generator ships in analyzers/dotnet/cs), or a ProjectReference with OutputItemType=\"Analyzer\"; "
                        + "the C# compiler must be Roslyn 4.14 or later (CS9057 in the build output means it is older).";
                if (marked) continue;
                var field = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
                    .FirstOrDefault(f => shardingAttributes.Any(a => f.IsDefined(a, inherit: false)));
                if (field is not null)
                    return $"Field '{type.FullName}.{field.Name}' has a sharding attribute, but its class is not marked [ParallelModule], so nothing partitions it. Add [ParallelModule] to the class and make it partial.";
            }
            return null;
        }

        /// <summary>The caller and the assemblies it reaches through others that use ModelParallel, those that use its attributes.</summary>
        private static IEnumerable<Assembly> UsersOfModelParallel(Assembly caller)
        {
            string dsl = typeof(ParallelModuleAttribute).Assembly.GetName().Name!;
            string runtime = typeof(PartitionCheck).Assembly.GetName().Name!;
            bool UsesModelParallel(AssemblyName[] references) => references.Any(r => r.Name == dsl || r.Name == runtime);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var pending = new Stack<Assembly>();
            pending.Push(caller);
            while (pending.Count > 0)
            {
                var assembly = pending.Pop();
                if (!seen.Add(assembly.FullName ?? assembly.GetName().Name!)) continue;
                var references = assembly.GetReferencedAssemblies();
                if (references.Any(r => r.Name == dsl)) yield return assembly;
                foreach (var reference in references)
                {
                    if (reference.Name == dsl || reference.Name == runtime || seen.Contains(reference.FullName)) continue;
                    if (TryLoad(reference) is { } loaded && UsesModelParallel(loaded.GetReferencedAssemblies())) pending.Push(loaded);
                }
            }
        }

        private static Assembly? TryLoad(AssemblyName name)
        {
            try
            {
                return Assembly.Load(name);
            }
            catch (Exception e) when (e is System.IO.FileNotFoundException or System.IO.FileLoadException or BadImageFormatException)
            {
                return null; // Not deployed with the program: it cannot hold a model this run builds.
            }
        }

        private static IEnumerable<Type> LoadableTypes(Assembly assembly)
        {
            try
            {
                return assembly.GetTypes();
            }
            catch (ReflectionTypeLoadException e)
            {
                return e.Types.Where(t => t is not null)!;
            }
        }
    }
}
