package textnorm

import "testing"

func TestNormalize(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"full width":        {"ＶＰＮ连不上？", "vpn连不上"},
		"case":              {"How To Reset WiFi", "how to reset wifi"},
		"punctuation runs":  {"  年假，怎么请？？！…  ", "年假 怎么请"},
		"traditional":       {"請問電腦無法開機怎麼辦", "请问电脑无法开机怎么办"},
		"digits kept":       {"工资条2024年3月", "工资条2024年3月"},
		"symbols dropped":   {"邮箱@公司#密码", "邮箱 公司 密码"},
		"ideographic space": {"打印机\u3000卡纸", "打印机 卡纸"},
		"empty":             {"？！。", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Normalize(c.in); got != c.want {
				t.Fatalf("Normalize(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestToSimplified(t *testing.T) {
	if got := ToSimplified("著名的網絡學習"); got != "著名的网络学习" {
		t.Fatalf("got %q", got)
	}
}

func TestAppendNormalizedNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() {
		buf = AppendNormalized(buf[:0], "我的电脑连不上wifi，怎么办")
	})
	if n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}
