package bot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dingdesk/dingdesk/config"
)

// Options tune matching.
type Options struct {
	// AnswerThreshold: a best score at or above it is answered directly.
	AnswerThreshold float64
	// ClarifyThreshold: a best score at or above it (and below
	// AnswerThreshold) offers the best entries to pick from.
	ClarifyThreshold float64
	// Synonyms are groups of words that mean the same; every word of a
	// group is rewritten to the group's first word before matching.
	Synonyms [][]string
	// StopWords are dropped from questions before matching; nil means the
	// built-in list (DefaultStopWords), an empty non-nil slice none.
	StopWords []string
	// Semantic, when set, adds embedding similarity to matching. Pass the
	// same one to every rebuild of a knowledge base.
	Semantic *Semantic
}

// OptionsFrom builds Options from the bot config. resolve turns the
// config's relative paths into real ones (config.(*Config).Resolve); nil
// leaves them as they are. Groups from SynonymsFile follow the inline ones.
func OptionsFrom(c config.Bot, resolve func(string) string) (Options, error) {
	o := Options{
		AnswerThreshold:  c.AnswerThreshold,
		ClarifyThreshold: c.ClarifyThreshold,
		StopWords:        c.StopWords,
	}
	for _, g := range c.Synonyms {
		o.Synonyms = append(o.Synonyms, append([]string(nil), g...))
	}
	if c.SynonymsFile != "" {
		p := c.SynonymsFile
		if resolve != nil {
			p = resolve(p)
		}
		groups, err := LoadSynonyms(p)
		if err != nil {
			return o, err
		}
		o.Synonyms = append(o.Synonyms, groups...)
	}
	return o, nil
}

// LoadSynonyms reads a synonyms file: one group a line, words separated by
// spaces, tabs, commas (also "，" and "、") or "|"; the first word is the
// canonical one. Blank lines and lines starting with # are skipped.
func LoadSynonyms(path string) ([][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("synonyms file: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var (
		groups [][]string
		errs   []error
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		words := strings.FieldsFunc(text, func(r rune) bool {
			switch r {
			case ' ', '\t', ',', '，', '、', '|', '\u3000':
				return true
			}
			return false
		})
		if len(words) < 2 {
			errs = append(errs, &LoadError{path, line, "a synonym group needs at least two words"})
			continue
		}
		groups = append(groups, words)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &LoadError{File: path, Msg: err.Error()})
	}
	return groups, errors.Join(errs...)
}

// DefaultStopWords are Chinese function words, greetings and politeness
// formulas that say nothing about what a question is about. Question words
// (怎么, 什么, 为什么, 哪里 …) and negations (不, 没) are kept: they separate
// "how do I" from "why can't I".
var DefaultStopWords = []string{
	// particles
	"的", "地", "得", "了", "着", "过", "吗", "呢", "吧", "啊", "呀", "哦", "噢", "喔", "嘛", "么",
	"哈", "嗯", "哎", "唉", "啦", "咯", "呗", "哇", "嘞", "哟", "呐", "额", "恩",
	// pronouns
	"我", "我们", "你", "你们", "您", "他", "她", "它", "他们", "咱", "咱们", "俺", "本人", "自己",
	// politeness and greetings
	"请", "请问", "问下", "问一下", "想问", "想问下", "想问一下", "咨询", "咨询一下", "你好", "您好", "hi",
	"hello", "谢谢", "多谢", "感谢", "麻烦", "麻烦你", "麻烦您", "亲", "在吗", "在不在", "一下",
	// fillers
	"就", "都", "也", "还", "又", "才", "和", "与", "及", "或", "跟", "把", "被", "给", "让", "对",
	"在", "是", "有", "个", "这", "那", "这个", "那个", "一个", "些", "一些", "呃", "那么", "这么",
	"现在", "刚刚", "刚才", "已经", "然后", "但是", "可是", "因为", "所以", "如果", "的话",
}
