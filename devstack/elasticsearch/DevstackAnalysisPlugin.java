/*
 * devstack: the analysis components of Elasticsearch's analysis-common module that the
 * shipped mappings use, for an embedded 7.17 node. analysis-common is not on Maven Central,
 * so this registers Lucene's own classes (lucene-analyzers-common, the same Lucene version as
 * the server) under the same names and with the same settings:
 *
 *   tokenizer  edge_ngram   min_gram (1), max_gram (2), token_chars, custom_token_chars
 *   filter     asciifolding preserve_original (false)
 *
 * `lowercase` is not registered here: the 7.17 server pre-configures it itself.
 * Anything else from analysis-common (ngram, word_delimiter, synonym, ...) is NOT available.
 */

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenizer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.AbstractTokenizerFactory;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

public final class DevstackAnalysisPlugin extends Plugin implements AnalysisPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        final Map<String, AnalysisProvider<TokenizerFactory>> tokenizers = new HashMap<>();
        tokenizers.put("edge_ngram", EdgeNGramFactory::new);
        return tokenizers;
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        final Map<String, AnalysisProvider<TokenFilterFactory>> filters = new HashMap<>();
        filters.put("asciifolding", AsciiFoldingFactory::new);
        return filters;
    }

    /** Character classes of `token_chars`, as analysis-common's CharMatcher defines them. */
    static final class TokenChars {
        private final Set<Integer> types = new HashSet<>();
        private final Set<Integer> custom = new HashSet<>();
        private final boolean all;

        TokenChars(final List<String> names, final String customChars) {
            for (final String name : names) {
                switch (name.toLowerCase(Locale.ROOT)) {
                    case "letter":
                        add(Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                            Character.MODIFIER_LETTER, Character.OTHER_LETTER);
                        break;
                    case "digit":
                        add(Character.DECIMAL_DIGIT_NUMBER);
                        break;
                    case "whitespace":
                        add(Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR);
                        custom.add((int) '\t'); custom.add((int) '\n'); custom.add((int) '\r');
                        custom.add(0x0B); custom.add(0x0C);
                        break;
                    case "punctuation":
                        add(Character.START_PUNCTUATION, Character.END_PUNCTUATION, Character.OTHER_PUNCTUATION,
                            Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION,
                            Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION);
                        break;
                    case "symbol":
                        add(Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL,
                            Character.OTHER_SYMBOL);
                        break;
                    case "custom":
                        if (customChars == null || customChars.isEmpty()) {
                            throw new IllegalArgumentException("Token type: [custom] requires setting [custom_token_chars]");
                        }
                        customChars.codePoints().forEach(custom::add);
                        break;
                    default:
                        throw new IllegalArgumentException("Unknown token type: '" + name
                            + "', must be one of [letter, digit, whitespace, punctuation, symbol, custom]");
                }
            }
            all = names.isEmpty();
        }

        private void add(final int... characterTypes) {
            for (final int t : characterTypes) {
                types.add(t);
            }
        }

        boolean isTokenChar(final int c) {
            return all || custom.contains(c) || types.contains(Character.getType(c));
        }
    }

    static final class EdgeNGramFactory extends AbstractTokenizerFactory {
        private final int minGram;
        private final int maxGram;
        private final TokenChars tokenChars;

        EdgeNGramFactory(final IndexSettings indexSettings, final Environment environment, final String name,
                         final Settings settings) {
            super(indexSettings, settings, name);
            this.minGram = settings.getAsInt("min_gram", EdgeNGramTokenizer.DEFAULT_MIN_GRAM_SIZE);
            this.maxGram = settings.getAsInt("max_gram", EdgeNGramTokenizer.DEFAULT_MAX_GRAM_SIZE);
            this.tokenChars = new TokenChars(settings.getAsList("token_chars"), settings.get("custom_token_chars"));
        }

        @Override
        public Tokenizer create() {
            return new EdgeNGramTokenizer(minGram, maxGram) {
                @Override
                protected boolean isTokenChar(final int chr) {
                    return tokenChars.isTokenChar(chr);
                }
            };
        }
    }

    static final class AsciiFoldingFactory extends AbstractTokenFilterFactory implements NormalizingTokenFilterFactory {
        private final boolean preserveOriginal;

        AsciiFoldingFactory(final IndexSettings indexSettings, final Environment environment, final String name,
                            final Settings settings) {
            super(indexSettings, name, settings);
            this.preserveOriginal = settings.getAsBoolean("preserve_original", false);
        }

        @Override
        public TokenStream create(final TokenStream tokenStream) {
            return new ASCIIFoldingFilter(tokenStream, preserveOriginal);
        }
    }
}
