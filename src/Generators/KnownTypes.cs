using Microsoft.CodeAnalysis;

namespace ModelParallel.Generators
{
    /// <summary>
    /// The TorchSharp and ModelParallel types the parser asks about, resolved once per read of a class from the
    /// compilation's own references and compared as symbols (a display string would also match a user's type of the same name).
    /// </summary>
    internal sealed class KnownTypes(Compilation compilation)
    {
        public INamedTypeSymbol? Tensor { get; } = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor");

        public INamedTypeSymbol? Torch { get; } = compilation.GetTypeByMetadataName("TorchSharp.torch");

        public INamedTypeSymbol? Functional { get; } = compilation.GetTypeByMetadataName("TorchSharp.torch+nn+functional");

        public INamedTypeSymbol? Special { get; } = compilation.GetTypeByMetadataName("TorchSharp.torch+special");

        public INamedTypeSymbol? ParallelModule { get; } = compilation.GetTypeByMetadataName(ParallelModuleGenerator.ParallelModuleAttribute);

        private readonly System.Collections.Generic.Dictionary<string, INamedTypeSymbol?> byName = new();

        /// <summary>The type of this metadata name in the compilation (nested types with '+'), looked up once.</summary>
        public INamedTypeSymbol? Type(string metadataName)
        {
            if (!byName.TryGetValue(metadataName, out var symbol)) byName[metadataName] = symbol = compilation.GetTypeByMetadataName(metadataName);
            return symbol;
        }

        /// <summary>Whether <paramref name="type"/> (or its generic definition) is the type of this metadata name.</summary>
        public bool Is(ITypeSymbol? type, string metadataName) =>
            type is not null && Type(metadataName) is { } known
            && (SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, known) || SymbolEqualityComparer.Default.Equals(type, known));

        /// <summary>Whether <paramref name="type"/> is, or derives from, the type of this metadata name.</summary>
        public bool DerivesFrom(ITypeSymbol? type, string metadataName)
        {
            for (var t = type; t is not null; t = t.BaseType)
                if (Is(t, metadataName)) return true;
            return false;
        }

        /// <summary>A Tensor or a type derived from it (a Parameter), nullable or not, or an array of them.</summary>
        public bool IsTensor(ITypeSymbol? type) =>
            type is IArrayTypeSymbol array ? DerivesFromTensor(array.ElementType) : DerivesFromTensor(type);

        private bool DerivesFromTensor(ITypeSymbol? type)
        {
            for (var t = type; t is not null; t = t.BaseType)
                if (SymbolEqualityComparer.Default.Equals(t.WithNullableAnnotation(NullableAnnotation.NotAnnotated), Tensor)) return true;
            return false;
        }

        /// <summary>torch, torch.nn.functional or torch.special: the static classes of tensor functions.</summary>
        public bool IsTorchFunctions(INamedTypeSymbol? type) =>
            type is not null && (SymbolEqualityComparer.Default.Equals(type, Torch) || SymbolEqualityComparer.Default.Equals(type, Functional)
                || SymbolEqualityComparer.Default.Equals(type, Special));
    }
}
