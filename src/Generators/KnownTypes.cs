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
